package smtpd

import (
	"bufio"
	"context"
	"crypto/sha256"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailvault/mailvault/mailgen"
)

// serverProc is a mailvault server process serving SMTP.
type serverProc struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

var (
	smtpListening = regexp.MustCompile(`msg=listening protocol=smtp addr=(\S+)`)
	serverStarted = regexp.MustCompile(`msg="mailvault started"`)
)

// startProc starts bin serve on dataDir and returns once SMTP listens. ok is
// false when the binary came up without an SMTP listener.
func startProc(t *testing.T, bin, dataDir string) (sp *serverProc, ok bool) {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "MAILVAULT_DATA_DIR="+dataDir, "MAILVAULT_LOG_LEVEL=info",
		"MAILVAULT_SMTP_LISTEN=127.0.0.1:0", "MAILVAULT_HTTP_LISTEN=127.0.0.1:0",
		"MAILVAULT_IMAP_LISTEN=", "MAILVAULT_IMAP_LISTEN_TLS=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sp = &serverProc{cmd: cmd, done: make(chan error, 1)}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		reported := false
		for sc.Scan() {
			line := sc.Text()
			if reported {
				continue
			}
			if m := smtpListening.FindStringSubmatch(line); m != nil {
				found <- m[1]
				reported = true
			} else if serverStarted.MatchString(line) {
				found <- ""
				reported = true
			} else if testing.Verbose() {
				t.Log("server:", line)
			}
		}
		if !reported {
			found <- ""
		}
		sp.done <- cmd.Wait()
	}()
	select {
	case sp.addr = <-found:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("server did not start within 60 s")
	}
	if sp.addr == "" {
		sp.stop(t, syscall.SIGKILL)
		return nil, false
	}
	return sp, true
}

// stop signals the process and waits for it.
func (sp *serverProc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	sp.cmd.Process.Signal(sig)
	select {
	case <-sp.done:
	case <-time.After(60 * time.Second):
		sp.cmd.Process.Kill()
		t.Fatal("server did not stop within 60 s")
	}
}

// buildServer builds and starts `mailvault serve`.
func buildServer(t *testing.T, dataDir string) (bin string, sp *serverProc) {
	t.Helper()
	gobin := needTool(t, "go")
	bin = filepath.Join(t.TempDir(), "mailvault")
	build := exec.Command(gobin, "build", "-o", bin, "./cmd/mailvault")
	build.Dir = moduleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sp, ok := startProc(t, bin, dataDir)
	if !ok {
		t.Fatal("mailvault serve does not serve SMTP")
	}
	return bin, sp
}

// TestCrash kills the server with SIGKILL while 20 senders deliver, restarts
// it, resends what was not acknowledged, and finds every message exactly
// once and the archive verified.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	dataDir := t.TempDir()
	p := openProvider(t, dataDir)
	createTenant(t, p, tenantSpec{name: "acme", domains: []string{"acme.example"}, users: []string{"alice"}, networks: []string{"127.0.0.0/8"}})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	bin, sp := buildServer(t, dataDir)

	const senders, total, killAfter = 20, 800, 200
	g := mailgen.New(7, []string{"acme.example", "partner.example"}, 8)
	g.AvgSize = 6 << 10
	msgs := make([][]byte, total)
	for i := range msgs {
		msgs[i] = smtpForm(g.Next().Raw)
	}

	var (
		mu    sync.Mutex
		acked = make([]bool, total)
		nAck  atomic.Int64
	)
	// deliver sends the given messages over `senders` connections; after a
	// failure a sender stops, as it would against a dead server.
	deliver := func(addr string, todo []int) (failures int) {
		queue := make(chan int, len(todo))
		for _, i := range todo {
			queue <- i
		}
		close(queue)
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var c *smtp.Client
				defer func() {
					if c != nil {
						c.Quit()
					}
				}()
				for i := range queue {
					if c == nil {
						var err error
						if c, err = smtp.Dial(addr); err == nil {
							err = c.Hello("sender.test")
						}
						if err != nil {
							failed.Add(1)
							c = nil
							return
						}
					}
					if err := send(c, msgs[i]); err != nil {
						failed.Add(1)
						c.Close()
						c = nil
						return
					}
					mu.Lock()
					acked[i] = true
					mu.Unlock()
					nAck.Add(1)
				}
			}()
		}
		wg.Wait()
		return int(failed.Load())
	}

	all := make([]int, total)
	for i := range all {
		all[i] = i
	}
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		for nAck.Load() < killAfter {
			time.Sleep(time.Millisecond)
		}
		sp.cmd.Process.Signal(syscall.SIGKILL)
	}()
	failures := deliver(sp.addr, all)
	<-killed
	sp.stop(t, syscall.SIGKILL)
	firstRound := nAck.Load()
	if failures == 0 || firstRound >= total {
		t.Fatalf("the kill came too late: %d of %d acknowledged, %d failures", firstRound, total, failures)
	}
	t.Logf("killed after %d acknowledged messages; %d transactions cut off", firstRound, failures)

	sp, ok := startProc(t, bin, dataDir)
	if !ok {
		t.Fatal("server did not come back")
	}
	round1 := append([]bool(nil), acked...)
	var resend []int
	for i, a := range acked {
		if !a {
			resend = append(resend, i)
		}
	}
	if f := deliver(sp.addr, resend); f != 0 {
		t.Fatalf("%d messages failed after restart", f)
	}
	sp.stop(t, syscall.SIGTERM)

	p = openProvider(t, dataDir)
	defer p.Close()
	tn, err := p.Tenant(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	got := folderContents(t, tn, officer+"@acme.example", "journal@acme.example", "INBOX")
	for i, m := range msgs {
		if n := got[sha256.Sum256(m)]; n != 1 {
			t.Errorf("message %d (acknowledged before the kill: %v) is in the journal %d times", i, round1[i], n)
		}
	}
	if len(got) != total {
		t.Errorf("journal holds %d distinct messages, want %d", len(got), total)
	}
	if st := tn.Stats(); st.Messages != total {
		t.Errorf("tenant holds %d messages, want %d", st.Messages, total)
	}
	rep, err := tn.Verify(context.Background(), nil)
	if err != nil || !rep.Clean() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

// send delivers one message and returns nil only on 250 after DATA.
func send(c *smtp.Client, msg []byte) error {
	if err := c.Mail("alice@acme.example"); err != nil {
		return err
	}
	if err := c.Rcpt("journal@acme.example"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}
