//! HTTP on loopback without a client library: a free port, a plain GET, a request read off a
//! connection, a server that answers one fixed thing, and a Prometheus' query API.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    process::Command,
    time::Duration,
};

use serde_json::Value;

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `s` as a URL's query component: every byte but the unreserved ones %-encoded.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A GET of `path` over HTTP/1.0 from 127.0.0.1:`port`: the body of a 200, or what went wrong
/// (the server not answering yet, or its whole answer).
pub fn http_get(port: u16, path: &str) -> Result<String, String> {
    let response = (|| {
        let mut conn = TcpStream::connect(("127.0.0.1", port))?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(conn, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut response = String::new();
        conn.read_to_string(&mut response)?;
        Ok::<_, std::io::Error>(response)
    })()
    .map_err(|e| format!("GET 127.0.0.1:{port}{path}: {e}"))?;
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.split(' ').nth(1) == Some("200") => Ok(body.to_string()),
        _ => Err(response),
    }
}

/// An instant query against the HTTP API of a Prometheus on 127.0.0.1:`port`; the result vector.
pub fn prometheus_query(port: u16, expr: &str) -> Result<Vec<Value>, String> {
    let path = format!("/api/v1/query?query={}", url_encode(expr));
    // A refused query (400, 422) says why in the JSON of its body.
    let body = http_get(port, &path).map_err(|e| match e.split_once("\r\n\r\n") {
        Some((_, body)) => body.to_string(),
        None => e,
    })?;
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if v["status"] != "success" {
        return Err(body);
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// `curl URL` (what a user would run): the body, or curl's complaint.
pub fn curl(url: &str) -> Result<String, String> {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "10", "--noproxy", "*", url])
        .output()
        .expect("run curl");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// One HTTP/1.x request, as a test's server reads it.
pub struct HttpRequest {
    /// The request line, then the headers, without their line ends.
    pub head: Vec<String>,
    /// `Content-Length` bytes of body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The request's head and body, read from `reader`; None when the connection ends first.
    pub fn read(reader: &mut impl BufRead) -> std::io::Result<Option<HttpRequest>> {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(None);
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            head.push(line.to_string());
        }
        let mut request = HttpRequest {
            head,
            body: Vec::new(),
        };
        let length = request
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        request.body = vec![0; length];
        reader.read_exact(&mut request.body)?;
        Ok(Some(request))
    }

    /// The path the request line asks for.
    pub fn path(&self) -> Option<&str> {
        self.head.first()?.split_whitespace().nth(1)
    }

    /// A header's value, its name matched as HTTP does (in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A server on loopback that answers every request with `answer`, or, with `None`, accepts
/// connections and never says a word. Lives as long as the test binary.
pub fn fake_http_server(answer: Option<&str>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = answer.map(str::to_string);
    std::thread::spawn(move || {
        let mut silent = Vec::new();
        for mut stream in listener.incoming().map_while(Result::ok) {
            match &answer {
                Some(answer) => {
                    // The whole request first: closing on unread bytes would reset the
                    // connection before the client reads the answer.
                    let Ok(reader) = stream.try_clone() else {
                        continue;
                    };
                    let _ = HttpRequest::read(&mut BufReader::new(reader));
                    let _ = stream.write_all(answer.as_bytes());
                }
                None => silent.push(stream),
            }
        }
    });
    port
}

/// A receiver on loopback that records every request it gets and answers each with `status`
/// (200: a webhook that accepts; 500: one that refuses): what Alertmanager's notifiers send
/// reaches it as it would reach Slack, PagerDuty or a team's webhook.
pub struct Recorder {
    pub port: u16,
    got: std::sync::Arc<std::sync::Mutex<Vec<HttpRequest>>>,
}

impl Recorder {
    pub fn start(status: u16) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let kept = kept.clone();
                std::thread::spawn(move || {
                    let Ok(reader) = stream.try_clone() else {
                        return;
                    };
                    let mut reader = BufReader::new(reader);
                    let mut stream = stream;
                    // Keep-alive: one connection may carry many notifications.
                    while let Ok(Some(request)) = HttpRequest::read(&mut reader) {
                        kept.lock().unwrap().push(request);
                        let body = if status < 300 {
                            "ok"
                        } else {
                            "refused by the test"
                        };
                        let answer = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Recorder { port, got }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request so far: its path and its body as JSON (Null when it is not JSON).
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.path().unwrap_or_default().to_string(),
                    serde_json::from_slice(&r.body).unwrap_or(Value::Null),
                )
            })
            .collect()
    }

    /// The value of header `name` of each request so far, in order.
    pub fn headers(&self, name: &str) -> Vec<Option<String>> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.header(name).map(str::to_string))
            .collect()
    }
}
