package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	var (
		logFile    = flag.String("log", "", "append one line per event (ready, signal names) to this file")
		exitOn     = flag.String("exit-on", "", "SIG:CODE — exit with CODE when SIG arrives, e.g. TERM:42")
		ignore     = flag.String("ignore", "", "comma-separated signals to ignore")
		trap       = flag.String("trap", "", "comma-separated signals to log without exiting")
		sleep      = flag.Duration("sleep", 0, "sleep this long, then exit with -code")
		code       = flag.Int("code", 0, "exit code")
		printID    = flag.Bool("id", false, "print uid gid groups")
		printEnv   = flag.String("env", "", "comma-separated variables to print as NAME=VALUE")
		printLimit = flag.Bool("nofile", false, "print the RLIMIT_NOFILE soft:hard")
		zombies    = flag.Bool("count-zombies", false, "print zombies=N: zombie processes whose parent is our parent")
		httpAddr   = flag.String("http", "", "serve GET /health (200, or 500 after /fail) on this address")
		say        = flag.String("say", "", "print this line to stdout")
		fg         = flag.Bool("foreground", false, "print foreground=true when our process group owns the terminal on stdin")
		envJSON    = flag.String("env-json", "", "write the variables named by -env as a JSON object (unset ones left out) to this file: exact bytes, no output redaction")
		stamp      = flag.String("stamp", "", "append the start time (unix nanoseconds) and pid as one line to this file")
		printUmask = flag.Bool("umask", false, "print umask=OOOO")
		printCwd   = flag.Bool("cwd", false, "print cwd=DIR")
		catOut     = flag.String("cat", "", "copy this file to stdout (one write per 64 KiB)")
		catErr     = flag.String("cat-err", "", "copy this file to stderr")
		interleave = flag.Int("interleave", 0, "write N lines alternating stdout \"out I\" and stderr \"err I\", one write(2) each")
		spew       = flag.Int64("spew", 0, "write this many bytes to stdout as 100-byte lines, then exit (throughput benchmark)")
		onTermGet  = flag.String("on-term-get", "", "on SIGTERM, GET this URL, write the body to -on-term-out, then exit with -code")
		onTermOut  = flag.String("on-term-out", "", "file for -on-term-get's response body")
		listenWait = flag.Duration("listen-after", 0, "with -http: wait this long before listening (an app that takes time to start)")
		readyStamp = flag.String("ready-stamp", "", "with -http: write the time the listener is up (unix nanoseconds) to this file")
	)
	flag.Parse()
	logf := func(format string, a ...any) {
		if *logFile == "" {
			return
		}
		f, err := os.OpenFile(*logFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testapp:", err)
			os.Exit(2)
		}
		fmt.Fprintf(f, format+"\n", a...)
		f.Close()
	}
	if *say != "" {
		fmt.Println(*say)
	}
	if *fg {
		pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
		fmt.Printf("foreground=%v\n", err == nil && pgrp == syscall.Getpgrp())
	}
	if *printID {
		groups, _ := syscall.Getgroups()
		fmt.Printf("uid=%d gid=%d groups=%v\n", os.Getuid(), os.Getgid(), groups)
	}
	for _, name := range split(*printEnv) {
		v, ok := os.LookupEnv(name)
		fmt.Printf("%s=%s set=%v\n", name, v, ok)
	}
	if *envJSON != "" {
		writeEnvJSON(*envJSON, split(*printEnv))
	}
	if *printLimit {
		var r syscall.Rlimit
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
		fmt.Printf("nofile=%d:%d\n", r.Cur, r.Max)
	}
	if *printUmask {
		m := syscall.Umask(0)
		syscall.Umask(m)
		fmt.Printf("umask=%04o\n", m)
	}
	if *printCwd {
		wd, _ := os.Getwd()
		fmt.Printf("cwd=%s\n", wd)
	}
	if *stamp != "" {
		f, err := os.OpenFile(*stamp, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testapp:", err)
			os.Exit(2)
		}
		fmt.Fprintf(f, "%d %d\n", time.Now().UnixNano(), os.Getpid())
		f.Close()
	}
	copyFile(*catOut, os.Stdout)
	copyFile(*catErr, os.Stderr)
	for i := 0; i < *interleave; i++ {
		if i%2 == 0 {
			fmt.Fprintf(os.Stdout, "out %d\n", i)
		} else {
			fmt.Fprintf(os.Stderr, "err %d\n", i)
		}
	}
	if *spew > 0 {
		spewLines(*spew)
	}
	if *zombies {
		fmt.Printf("zombies=%d\n", countZombies(os.Getppid()))
	}
	for _, s := range split(*ignore) {
		signal.Ignore(sig(s))
	}
	sigc := make(chan os.Signal, 16)
	var exitSig os.Signal
	exitCode := 0
	if *exitOn != "" {
		s, c, _ := strings.Cut(*exitOn, ":")
		exitSig = sig(s)
		exitCode, _ = strconv.Atoi(c)
		signal.Notify(sigc, exitSig)
	}
	for _, s := range split(*trap) {
		signal.Notify(sigc, sig(s))
	}
	termc := make(chan os.Signal, 1)
	if *onTermGet != "" {
		signal.Notify(termc, syscall.SIGTERM)
	}
	if *httpAddr != "" {
		failing := false
		mux := http.NewServeMux()
		mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
			if failing {
				w.WriteHeader(500)
				return
			}
			fmt.Fprintln(w, "ok")
		})
		mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { failing = true })
		time.Sleep(*listenWait)
		l, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testapp:", err)
			os.Exit(2)
		}
		ready := time.Now()
		go http.Serve(l, mux)
		if *readyStamp != "" {
			if err := os.WriteFile(*readyStamp, []byte(strconv.FormatInt(ready.UnixNano(), 10)+"\n"), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "testapp:", err)
				os.Exit(2)
			}
		}
	}
	logf("ready pid=%d pgid=%d", os.Getpid(), syscall.Getpgrp())
	var timeout <-chan time.Time
	if *sleep > 0 {
		timeout = time.After(*sleep)
	} else if *exitOn == "" && *trap == "" && *httpAddr == "" && *ignore == "" && *onTermGet == "" {
		os.Exit(*code)
	}
	for {
		select {
		case s := <-sigc:
			logf("signal %s", sigName(s))
			if s == exitSig {
				os.Exit(exitCode)
			}
		case <-termc:
			logf("signal TERM")
			body := []byte("error: ")
			if resp, err := http.Get(*onTermGet); err != nil {
				body = append(body, err.Error()...)
			} else {
				body, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if err := os.WriteFile(*onTermOut, body, 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "testapp:", err)
				os.Exit(2)
			}
			os.Exit(*code)
		case <-timeout:
			os.Exit(*code)
		}
	}
}

func copyFile(path string, w *os.File) {
	if path == "" {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(2)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				os.Exit(3)
			}
		}
		if err != nil {
			return
		}
	}
}

// spewLines writes n bytes of 100-byte lines in 1 MiB writes.
func spewLines(n int64) {
	line := []byte(strings.Repeat("abcdefghij", 10))
	line[99] = '\n'
	chunk := make([]byte, 0, 1<<20)
	for len(chunk)+100 <= cap(chunk) {
		chunk = append(chunk, line...)
	}
	for n > 0 {
		b := chunk
		if int64(len(b)) > n {
			b = b[:n]
		}
		if _, err := os.Stdout.Write(b); err != nil {
			os.Exit(3)
		}
		n -= int64(len(b))
	}
}

// writeEnvJSON writes the named variables (all of them when names is empty) to path, atomically, so a test
// sees either nothing or the whole object.
func writeEnvJSON(path string, names []string) {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if len(names) == 0 || slices.Contains(names, k) {
			m[k] = v
		}
	}
	data, _ := json.Marshal(m)
	err := os.WriteFile(path+".tmp", data, 0o644)
	if err == nil {
		err = os.Rename(path+".tmp", path)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(2)
	}
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func signals() map[string]syscall.Signal {
	return map[string]syscall.Signal{"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT,
		"HUP": syscall.SIGHUP, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "WINCH": syscall.SIGWINCH,
		"ALRM": syscall.SIGALRM, "CONT": syscall.SIGCONT}
}

func sigName(s os.Signal) string {
	for k, v := range signals() {
		if v == s {
			return k
		}
	}
	return s.String()
}

func sig(name string) syscall.Signal {
	s, ok := signals()[strings.TrimPrefix(strings.ToUpper(name), "SIG")]
	if !ok {
		fmt.Fprintln(os.Stderr, "testapp: unknown signal", name)
		os.Exit(2)
	}
	return s
}

func countZombies(ppid int) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		f, err := os.Open("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		line, _ := bufio.NewReader(f).ReadString('\n')
		f.Close()
		i := strings.LastIndexByte(line, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(line[i+1:])
		if len(fields) > 1 && fields[0] == "Z" && fields[1] == strconv.Itoa(ppid) {
			n++
		}
	}
	return n
}
