@echo off
rem kubectl (1.26 and later) runs this to complete `kubectl automon ...`: it passes the
rem words after `automon`; the plugin answers (Cobra's __complete protocol). Put it on PATH
rem next to kubectl-automon.exe.
kubectl-automon.exe __complete %*
