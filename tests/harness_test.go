package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailvault/mailvault/server"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mailvault-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "mailvault")
	build := exec.Command("go", "build", "-o", binary, "../cmd/mailvault")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build mailvault:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// handedOut holds the ports freeAddr gave away: the kernel may offer a port
// again as soon as its probe listener closes, and two listeners of one
// server on the same port make it exit at start.
var handedOut = struct {
	sync.Mutex
	ports map[string]bool
}{ports: map[string]bool{}}

// freeAddr returns a loopback address that was free a moment ago and that
// no other caller in this process was given.
func freeAddr(t testing.TB) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if !handedOut.ports[addr] {
			handedOut.ports[addr] = true
			return addr
		}
	}
	t.Fatal("no unused loopback port found")
	return ""
}

// instance is one running `mailvault serve` process.
type instance struct {
	t       testing.TB
	dataDir string
	env     []string
	cmd     *exec.Cmd
	logMu   sync.Mutex
	log     strings.Builder
	exited  chan struct{}
	HTTP    string
	IMAP    string
	SMTP    string
}

func newInstance(t testing.TB) *instance { return newInstanceAt(t, t.TempDir()) }

// newInstanceAt is an instance on an existing data directory (a restored
// one, say), on ports of its own.
func newInstanceAt(t testing.TB, dataDir string) *instance {
	in := &instance{t: t, dataDir: dataDir, HTTP: freeAddr(t), IMAP: freeAddr(t), SMTP: freeAddr(t)}
	in.env = append(os.Environ(),
		"MAILVAULT_DATA_DIR="+in.dataDir,
		"MAILVAULT_HTTP_LISTEN="+in.HTTP,
		"MAILVAULT_IMAP_LISTEN="+in.IMAP,
		"MAILVAULT_IMAP_LISTEN_TLS="+freeAddr(t),
		"MAILVAULT_SMTP_LISTEN="+in.SMTP,
	)
	t.Cleanup(func() { in.kill() })
	return in
}

// start runs the server and waits until its API answers. A listen address
// that another process took since freeAddr probed it is replaced and the
// start tried again; every other exit at start fails the test.
func (in *instance) start(args ...string) {
	in.t.Helper()
	for attempt := 0; ; attempt++ {
		taken := in.tryStart(args)
		if taken == "" {
			return
		}
		if attempt == 3 {
			in.t.Fatalf("server exited at start:\n%s", in.logs())
		}
		in.replaceAddr(taken)
	}
}

// bindRace matches the start error of a listen address already in use.
var bindRace = regexp.MustCompile(`listen \S+ on (\S+): listen tcp \S+: bind: address already in use`)

// tryStart starts the server once; it returns the listen address the
// server found taken, or "" once the server answers.
func (in *instance) tryStart(args []string) string {
	in.t.Helper()
	in.cmd = exec.Command(binary, append([]string{"serve"}, args...)...)
	in.cmd.Env = in.env
	pr, pw := io.Pipe()
	in.cmd.Stdout, in.cmd.Stderr = pw, pw
	in.exited = make(chan struct{})
	if err := in.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			in.logMu.Lock()
			in.log.WriteString(sc.Text() + "\n")
			in.logMu.Unlock()
		}
	}()
	go func() {
		in.cmd.Wait()
		pw.Close()
		close(in.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + in.HTTP + "/healthz")
		if err == nil {
			resp.Body.Close()
			return ""
		}
		select {
		case <-in.exited:
			<-scanned
			if m := bindRace.FindStringSubmatch(in.logs()); m != nil {
				in.cmd = nil
				return m[1]
			}
			in.t.Fatalf("server exited at start:\n%s", in.logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
	in.t.Fatalf("server did not start:\n%s", in.logs())
	return ""
}

// replaceAddr gives the listener that was on addr a fresh port.
func (in *instance) replaceAddr(addr string) {
	fresh := freeAddr(in.t)
	for i, e := range in.env {
		if k, v, ok := strings.Cut(e, "="); ok && v == addr && strings.Contains(k, "_LISTEN") {
			in.env[i] = k + "=" + fresh
		}
	}
	for _, f := range []*string{&in.HTTP, &in.IMAP, &in.SMTP} {
		if *f == addr {
			*f = fresh
		}
	}
	in.logMu.Lock()
	in.log.Reset()
	in.logMu.Unlock()
}

func (in *instance) logs() string {
	in.logMu.Lock()
	defer in.logMu.Unlock()
	return in.log.String()
}

// kill -9, the way a crash or the OOM killer ends a process.
func (in *instance) kill() {
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	in.cmd.Process.Signal(syscall.SIGKILL)
	<-in.exited
	in.cmd = nil
}

// stop ends the server gracefully.
func (in *instance) stop() {
	if in.cmd == nil {
		return
	}
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.exited:
	case <-time.After(30 * time.Second):
		in.t.Errorf("server did not stop on SIGTERM:\n%s", in.logs())
		in.kill()
	}
	in.cmd = nil
}

// cli runs a mailvault administration command against the instance.
func (in *instance) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = in.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (in *instance) mustCLI(args ...string) string {
	in.t.Helper()
	out, err := in.cli(args...)
	if err != nil {
		in.t.Fatalf("mailvault %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// startAcme starts an instance with env and the tenant acme:
// the user alice and the compliance user carol, whose password the CLI
// is given.
func startAcme(t *testing.T, env ...string) *instance {
	t.Helper()
	in := newInstance(t)
	in.env = append(append(in.env, "MAILVAULT_PASSWORD=carol-secret"), env...)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	in.mustCLI("user", "add", "-tenant", "acme", "carol@acme.example", "-password", "carol-secret", "-role", "compliance")
	return in
}

func (in *instance) client() *server.Client {
	in.t.Helper()
	tok, err := server.ReadToken(in.dataDir)
	if err != nil {
		in.t.Fatal(err)
	}
	return &server.Client{BaseURL: "http://" + in.HTTP, Token: tok}
}

// importStream sends msgs to the import API as one batch stream and
// returns the results the server acknowledged, by message number, and the
// first result that reports an error (empty if none). after is called after
// each acknowledgement (to kill the server mid-way, say); the stream ends
// when the server stops answering or reports an error.
func (in *instance) importStream(tenant, mailbox string, msgs [][]byte, after func(acked int)) (map[int]server.ImportResult, server.ImportResult) {
	in.t.Helper()
	pr, pw := io.Pipe()
	defer pr.Close()
	go func() {
		bw := bufio.NewWriter(pw)
		for _, m := range msgs {
			if err := server.WriteBatchRecord(bw, server.BatchRecord{Raw: m}); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(bw.Flush())
	}()
	resp, err := in.client().Raw("POST", "/api/v1/tenants/"+tenant+"/import?mailbox="+mailbox, "application/x-mailvault-batch", pr)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	acked := map[int]server.ImportResult{}
	dec := json.NewDecoder(resp.Body)
	for {
		var r server.ImportResult
		if err := dec.Decode(&r); err != nil {
			return acked, server.ImportResult{}
		}
		if r.Error != "" {
			return acked, r
		}
		acked[r.N] = r
		after(len(acked))
	}
}
