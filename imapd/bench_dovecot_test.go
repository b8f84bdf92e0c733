package imapd

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/cputime"
	"github.com/mailvault/mailvault/internal/imapwire"
)

// BenchmarkAgainstDovecot runs one read-only workload, command by command,
// against mailvault and against Debian's Dovecot (dovecot-imapd, started
// by the benchmark on a loopback port) serving the same generated folder,
// and prints each command's median time on both, the ratio (Dovecot's
// time over mailvault's: above 1, mailvault is faster), and the CPU time
// per run of each: mailvault's process (the test client included) and
// Dovecot's imap processes (at the kernel's 10 ms resolution, summed over
// the runs):
//
//	apt-get install dovecot-imapd
//	IMAPD_BENCH_N=10000 go test -run '^$' -bench AgainstDovecot -benchtime 1x ./imapd/
//
// IMAPD_BENCH_N sets the folder size (default 10,000), IMAPD_BENCH_DIR
// keeps both archives between runs, IMAPD_BENCH_RUNS the timed runs per
// command (default 5), IMAPD_BENCH_ONLY a regular expression that the names
// of the commands to run must match. Each command runs once untimed on both first, so
// that Dovecot has filled its index cache, then the runs alternate between
// the servers. The client reads the responses with a lean scanner, so that
// its own cost does not hide the servers'.
func BenchmarkAgainstDovecot(b *testing.B) {
	n := benchEnvInt(b, "IMAPD_BENCH_N", 10000)
	runs := benchEnvInt(b, "IMAPD_BENCH_RUNS", 5)
	dir := os.Getenv("IMAPD_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	dir = filepath.Join(dir, fmt.Sprintf("n%d", n))
	msgs := benchMessages(n)
	dovecot := startDovecot(b, dir, msgs)
	addr, _ := benchArchive(b, dir, msgs, 0)
	mv := dialBench(b, addr, "alice@acme.example", password)
	dc := dialBench(b, dovecot, "alice", dovecotPassword)
	for _, c := range []*benchConn{mv, dc} {
		if got := c.run(b, "SELECT INBOX"); got == 0 {
			b.Fatal("SELECT answered nothing")
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var some []string
	for range 100 {
		some = append(some, strconv.Itoa(1+rng.IntN(n)))
	}
	head := min(n, 3000)
	cmds := []struct{ name, cmd string }{
		{"HEADER.FIELDS 1:" + strconv.Itoa(head), fmt.Sprintf("FETCH 1:%d (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])", head)},
		{"HEADER.FIELDS 1:* (client list)", "UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])"},
		{"HEADER 1:" + strconv.Itoa(head), fmt.Sprintf("FETCH 1:%d (BODY.PEEK[HEADER])", head)},
		{"BODYSTRUCTURE 1:100", "FETCH 1:100 (BODYSTRUCTURE)"},
		{"BODYSTRUCTURE 1:*", "FETCH 1:* (BODYSTRUCTURE)"},
		{"ENVELOPE 1:*", "FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)"},
		{"BODY[] 100 random", "UID FETCH " + strings.Join(some, ",") + " (BODY.PEEK[])"},
		{"SORT REVERSE DATE", "SORT (REVERSE DATE) UTF-8 ALL"},
		{"SORT ARRIVAL", "SORT (ARRIVAL) UTF-8 ALL"},
		{"SORT FROM", "SORT (FROM) UTF-8 ALL"},
		{"SORT SUBJECT", "SORT (SUBJECT) UTF-8 ALL"},
		{"SORT SIZE", "SORT (SIZE) UTF-8 ALL"},
		{"THREAD REFERENCES", "THREAD REFERENCES UTF-8 ALL"},
		{"THREAD ORDEREDSUBJECT", "THREAD ORDEREDSUBJECT UTF-8 ALL"},
	}
	fmt.Printf("%d messages, median of %d runs, ms\n", n, runs)
	fmt.Printf("%-34s %10s %10s %8s %12s %12s\n", "command", "mailvault", "dovecot", "ratio", "mv cpu/run", "dc cpu/run")
	only := regexp.MustCompile(os.Getenv("IMAPD_BENCH_ONLY"))
	for _, c := range cmds {
		if !only.MatchString(c.name) {
			continue
		}
		var tm, td []time.Duration
		var cm, cd time.Duration
		mv.run(b, c.cmd)
		dc.run(b, c.cmd)
		for range runs {
			start := cputime.Process()
			tm = append(tm, timeRun(b, mv, c.cmd))
			cm += cputime.Process() - start
			startD := dovecotCPU()
			td = append(td, timeRun(b, dc, c.cmd))
			cd += dovecotCPU() - startD
		}
		m, d := median(tm), median(td)
		fmt.Printf("%-34s %10.2f %10.2f %8.2f %12.2f %12.2f\n", c.name, ms(m), ms(d), float64(d)/float64(m), ms(cm/time.Duration(runs)), ms(cd/time.Duration(runs)))
		b.ReportMetric(ms(m), strings.ReplaceAll(c.name, " ", "_")+"-ms")
	}
}

func timeRun(b *testing.B, c *benchConn, cmd string) time.Duration {
	start := time.Now()
	c.run(b, cmd)
	return time.Since(start)
}

// dovecotCPU returns the CPU time of the imap processes of the Dovecot this
// process started (children of its master, a child of this process).
func dovecotCPU() time.Duration {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	type proc struct {
		ppid int
		comm string
		cpu  int64 // clock ticks
	}
	procs := map[int]proc{}
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15)
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(string(b[end+1:]))
		if len(fields) < 13 {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:open])))
		ppid, _ := strconv.Atoi(fields[1])
		ut, _ := strconv.ParseInt(fields[11], 10, 64)
		st, _ := strconv.ParseInt(fields[12], 10, 64)
		procs[pid] = proc{ppid, string(b[open+1 : end]), ut + st}
	}
	var ticks int64
	for _, p := range procs {
		if p.comm != "imap" {
			continue
		}
		if master, ok := procs[p.ppid]; ok && master.ppid == os.Getpid() {
			ticks += p.cpu
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// benchConn is a plain socket IMAP client that only counts responses.
type benchConn struct {
	conn net.Conn
	r    *bufio.Reader
	tag  int
}

func dialBench(b *testing.B, addr, user, pass string) *benchConn {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	c := &benchConn{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	if l, err := c.r.ReadSlice('\n'); err != nil || !bytes.HasPrefix(l, []byte("* OK")) {
		b.Fatalf("greeting %q: %v", l, err)
	}
	c.run(b, "LOGIN "+quote(user)+" "+quote(pass))
	return c
}

// run sends cmd and returns the number of untagged responses; the command
// must succeed.
func (c *benchConn) run(b *testing.B, cmd string) int {
	c.tag++
	tag := []byte(fmt.Sprintf("b%d ", c.tag))
	c.conn.SetDeadline(time.Now().Add(5 * time.Minute))
	if _, err := fmt.Fprintf(c.conn, "%s%s\r\n", tag, cmd); err != nil {
		b.Fatal(err)
	}
	n := 0
	start := true // at the start of a response, not after a literal
	for {
		l, err := c.r.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			var more []byte
			more, err = c.r.ReadSlice('\n')
			l = more // only the line's end matters below
		}
		if err != nil {
			b.Fatalf("%.40s: read: %v", cmd, err)
		}
		if start && bytes.HasPrefix(l, tag) {
			if !bytes.HasPrefix(l[len(tag):], []byte("OK")) {
				b.Fatalf("%.60s: %s", cmd, l)
			}
			return n
		}
		if start {
			n++
		}
		start = true
		if size, ok := imapwire.LiteralSize(string(bytes.TrimRight(l, "\r\n"))); ok {
			if _, err := c.r.Discard(size); err != nil {
				b.Fatal(err)
			}
			start = false
		}
	}
}
