package imapd

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkLoginFlood floods a real server on loopback with wrong LOGINs
// and measures what the users see meanwhile:
//
//	go test -run '^$' -bench LoginFlood -benchtime 1x ./imapd/
//
// IMAPD_FLOOD_CONNS connections (default 500) from 127.0.0.1 send wrong
// LOGINs for IMAPD_FLOOD_SECONDS (default 10): a third for alice (an
// account under attack), a third for unknown users, a third for unknown
// domains. Meanwhile bob, who logged in from 127.0.0.1 before, zed, new
// on 127.0.0.2, and carol, new on 127.0.0.1, log in with the right
// password every half second. It prints the process's peak RSS during the
// flood (VmHWM, reset before it), its RSS after, the login times and what
// the login gate did.
func BenchmarkLoginFlood(b *testing.B) {
	conns := benchEnvInt(b, "IMAPD_FLOOD_CONNS", 500)
	seconds := benchEnvInt(b, "IMAPD_FLOOD_SECONDS", 10)
	f := newFixture(b, 1, false)
	if _, err := floodLogin(f.addr, "127.0.0.1", "bob@acme.example", password); err != nil {
		b.Fatal(err) // bob's mail client has logged in before
	}
	for range b.N {
		rssBefore := procStatus("VmRSS")
		// Writing 5 resets VmHWM to the current RSS (Linux 4.0 and later).
		hwmReset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
		statsBefore := f.p.LoginStats()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var answered, unavailable, failed atomic.Int64
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				floodConn(f.addr, i, stop, &answered, &unavailable, &failed)
			}()
		}
		time.Sleep(time.Second) // let the flood fill the queue
		type user struct{ name, login, from string }
		users := []user{
			{"bob (known, same address)", "bob@acme.example", "127.0.0.1"},
			{"zed (new, other address)", "zed@globex.example", "127.0.0.2"},
			{"carol (new, same address)", "carol@acme.example", "127.0.0.1"},
		}
		times := make([][]time.Duration, len(users))
		refused := make([]int, len(users))
		deadline := time.Now().Add(time.Duration(seconds)*time.Second - time.Second)
		for time.Now().Before(deadline) {
			for i, u := range users {
				start := time.Now()
				st, err := floodLogin(f.addr, u.from, u.login, password)
				if err != nil {
					b.Fatal(err)
				}
				if strings.HasPrefix(st, "OK") {
					times[i] = append(times[i], time.Since(start))
				} else {
					refused[i]++
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
		peak := procStatus("VmHWM")
		close(stop)
		wg.Wait()
		rssEnd := procStatus("VmRSS")
		time.Sleep(10 * time.Second)
		rssLater := procStatus("VmRSS")
		st := f.p.LoginStats()

		fmt.Printf("login flood: %d connections from 127.0.0.1 for %d s, %d wrong LOGINs answered (%.0f/s), %d of them UNAVAILABLE, %d connection errors\n",
			conns, seconds, answered.Load(), float64(answered.Load())/float64(seconds), unavailable.Load(), failed.Load())
		fmt.Printf("login gate: %d argon2id checks, %d refused busy, %d refused throttled\n",
			st.Checks-statsBefore.Checks, st.Busy-statsBefore.Busy, st.Throttled-statsBefore.Throttled)
		if !hwmReset {
			fmt.Println("(VmHWM could not be reset: the peak is that of the whole run)")
		}
		fmt.Printf("RSS: %.0f MiB before, peak %.0f MiB during, %.0f MiB at the end, %.0f MiB 10 s later\n",
			mib(rssBefore), mib(peak), mib(rssEnd), mib(rssLater))
		for i, u := range users {
			ts := times[i]
			if len(ts) == 0 {
				fmt.Printf("%-28s no login succeeded, %d refused\n", u.name, refused[i])
				continue
			}
			slices.Sort(ts)
			fmt.Printf("%-28s %d logins: median %v, max %v; %d refused (try again)\n",
				u.name, len(ts), ts[len(ts)/2].Round(time.Millisecond), ts[len(ts)-1].Round(time.Millisecond), refused[i])
		}
	}
}

// floodConn sends wrong LOGINs on one connection until stop, reconnecting
// when the server hangs up.
func floodConn(addr string, i int, stop chan struct{}, answered, unavailable, failed *atomic.Int64) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			failed.Add(1)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		r := bufio.NewReader(conn)
		if _, err := r.ReadString('\n'); err != nil {
			conn.Close()
			failed.Add(1)
			continue
		}
		for j := 0; ; j++ {
			select {
			case <-stop:
				conn.Close()
				return
			default:
			}
			var login string
			switch i % 3 {
			case 0:
				login = "alice@acme.example"
			case 1:
				login = fmt.Sprintf("u%d-%d-%d@acme.example", i, n, j)
			default:
				login = fmt.Sprintf("alice@d%d-%d-%d.example", i, n, j)
			}
			conn.SetDeadline(time.Now().Add(time.Minute))
			if _, err := fmt.Fprintf(conn, "a LOGIN %s \"wrong\"\r\n", strconv.Quote(login)); err != nil {
				break
			}
			l, err := r.ReadString('\n')
			if err != nil {
				break
			}
			answered.Add(1)
			if strings.Contains(l, "[UNAVAILABLE]") {
				unavailable.Add(1)
			}
		}
		conn.Close()
	}
}

// floodLogin logs in once on a new connection from a loopback address and
// returns the tagged status without the tag.
func floodLogin(addr, from, login, pass string) (string, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(conn)
	if _, err := r.ReadString('\n'); err != nil {
		return "", err
	}
	if _, err := fmt.Fprintf(conn, "a LOGIN %s %s\r\n", strconv.Quote(login), strconv.Quote(pass)); err != nil {
		return "", err
	}
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if rest, ok := strings.CutPrefix(l, "a "); ok {
			return strings.TrimSpace(rest), nil
		}
	}
}

// procStatus reads a "kB" line of /proc/self/status, in bytes.
func procStatus(key string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for l := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(l, key+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
