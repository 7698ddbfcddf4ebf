//! Waiting in a test: polling until what it reads holds, retrying until an answer is accepted,
//! and work left for the moment the test binary exits.

use std::time::{Duration, Instant};

/// Reads with `read` every 500ms until `done` holds of what it read, or `secs` pass; the last
/// reading either way, for the caller's assertion to show.
pub fn poll<T>(secs: u64, mut read: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut value = read();
    while !done(&value) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        value = read();
    }
    value
}

/// Polls `check` every 200ms until it holds; panics with `what` after `secs`.
#[track_caller]
pub fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "not within {secs}s: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Asks again (every 300ms, for up to a minute) until `check` accepts the answer; the last
/// refusal is the failure message.
#[track_caller]
pub fn until<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match check() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("{what}: not within 60s; last:\n{e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

type ExitAction = Box<dyn FnOnce() + Send>;
static AT_EXIT: std::sync::Mutex<Vec<ExitAction>> = std::sync::Mutex::new(Vec::new());

/// Runs `f` when the test binary exits, passed or failed, latest first: for what several
/// tests share (a stack, the operator) and no single test's guard can remove.
pub fn at_exit(f: impl FnOnce() + Send + 'static) {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        unsafe extern "C" {
            fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
        }
        extern "C" fn run_all() {
            let actions = std::mem::take(
                &mut *AT_EXIT
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            for action in actions.into_iter().rev() {
                // A panic must not cross into C.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(action));
            }
        }
        // SAFETY: atexit is the C library's; run_all neither unwinds nor calls exit.
        let registered = unsafe { atexit(run_all) };
        assert_eq!(registered, 0, "atexit failed");
    });
    AT_EXIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(Box::new(f));
}
