package main

import (
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") || needsAgent() {
		agent := os.Getenv("LEANCORE_AGENT")
		if agent == "" {
			exe, _ := os.Executable()
			agent = filepath.Join(filepath.Dir(exe), "berth")
		}
		err := syscall.Exec(agent, append([]string{"berth"}, os.Args[1:]...), os.Environ())
		os.Stderr.WriteString("leancore: exec " + agent + ": " + err.Error() + "\n")
		os.Exit(127)
	}
	os.Exit(supervise(args))
}

// needsAgent: a BERTH_* setting or a value that looks like a secret reference means the agent's work.
func needsAgent() bool {
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "BERTH_") || strings.HasPrefix(v, "arn:aws:") || strings.HasPrefix(v, "ssm:") ||
			strings.HasPrefix(v, "secretsmanager:") || strings.HasPrefix(v, "kms:") {
			return true
		}
	}
	return false
}

func supervise(argv []string) int {
	path := argv[0]
	if !strings.Contains(path, "/") {
		for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
			if p := filepath.Join(dir, path); syscall.Access(p, 1) == nil {
				path = p
				break
			}
		}
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs) // every catchable signal; SIGCHLD tells the reaper to sweep
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: os.Environ(),
		Files: []uintptr{0, 1, 2}, Sys: &syscall.SysProcAttr{Setpgid: true, Foreground: false}})
	if err != nil {
		os.Stderr.WriteString("leancore: " + argv[0] + ": " + err.Error() + "\n")
		if err == syscall.ENOENT {
			return 127
		}
		return 126
	}
	for {
		for { // reap every exited process; the child's status ends the run
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err != nil || got <= 0 {
				break
			}
			if got == pid {
				if ws.Signaled() {
					return 128 + int(ws.Signal())
				}
				return ws.ExitStatus()
			}
		}
		s := (<-sigs).(syscall.Signal)
		if s != syscall.SIGCHLD {
			_ = syscall.Kill(-pid, s)
		}
	}
}
