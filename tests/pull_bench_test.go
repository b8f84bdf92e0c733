package tests

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/mailfile"
	"github.com/mailvault/mailvault/mailgen"
)

// BenchmarkPullIMAP pulls a Dovecot mailbox of generated messages (about
// 30 KB each) through `mailvault pull run` and, for comparison, imports the
// same messages as an mbox into another mailbox; it prints both rates and
// the server's CPU time per message:
//
//	MAILVAULT_PULL_BENCH_N=50000 go test -run '^$' -bench PullIMAP -benchtime 1x ./tests/
//
// The default size is 5,000 messages.
func BenchmarkPullIMAP(b *testing.B) {
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("MAILVAULT_PULL_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	dc := startDovecotServer(b, map[string]string{"bob": "bob-at-host"}, "master-secret")
	g := mailgen.New(11, []string{"acme.example", "partner.example"}, 20)
	var mbox bytes.Buffer
	var size int64
	for i := range n {
		m := g.Next()
		dc.deliver(b, "bob", "", i, m.Raw, "S", m.Date)
		mailfile.WriteMboxrd(&mbox, m.Raw, "bob@partner.example", m.Date)
		size += int64(len(m.Raw))
	}
	mboxFile := filepath.Join(b.TempDir(), "same.mbox")
	os.WriteFile(mboxFile, mbox.Bytes(), 0o644)
	in := newInstance(b)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "bob@acme.example", "-password", "bob-secret-1")
	in.mustCLI("user", "add", "-tenant", "acme", "carol@acme.example", "-password", "carol-secret-1")
	host, port, _ := net.SplitHostPort(dc.addr)
	prof := filepath.Join(b.TempDir(), "bob.json")
	writeTestFile(b, prof, fmt.Sprintf(`{"host": %q, "port": %s, "security": "none", "login": "bob",
		"master_login": "master", "password": "master-secret", "mailbox": "bob@acme.example"}`, host, port))
	in.mustCLI("pull", "put", "-tenant", "acme", "bob", "-file", prof)
	b.ResetTimer()
	cpu0 := procCPU(b, in.cmd.Process.Pid)
	start := time.Now()
	out := in.mustCLI("pull", "run", "-tenant", "acme", "bob")
	pullTime := time.Since(start)
	pullCPU := procCPU(b, in.cmd.Process.Pid) - cpu0
	if !strings.Contains(out, fmt.Sprintf("%d archived", n)) {
		b.Fatalf("pull:\n%s", out)
	}
	cpu0 = procCPU(b, in.cmd.Process.Pid)
	start = time.Now()
	in.mustCLI("import", "-quiet", "-tenant", "acme", "-mailbox", "carol@acme.example", mboxFile)
	importTime := time.Since(start)
	importCPU := procCPU(b, in.cmd.Process.Pid) - cpu0
	b.StopTimer()
	fmt.Printf("%d messages, %.1f MB\n", n, float64(size)/1e6)
	fmt.Printf("IMAP pull from Dovecot: %8.0f msg/s  %6.1f MB/s  server CPU %.2f ms/msg\n",
		float64(n)/pullTime.Seconds(), float64(size)/1e6/pullTime.Seconds(), float64(pullCPU.Microseconds())/1e3/float64(n))
	fmt.Printf("import of the same mbox: %7.0f msg/s  %6.1f MB/s  server CPU %.2f ms/msg (duplicates of the pulled copies: stored once)\n",
		float64(n)/importTime.Seconds(), float64(size)/1e6/importTime.Seconds(), float64(importCPU.Microseconds())/1e3/float64(n))
	b.ReportMetric(float64(n)/pullTime.Seconds(), "pull-msg/s")
}

// procCPU is the user and system CPU time of a process so far.
func procCPU(b testing.TB, pid int) time.Duration {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}
