package smtpd

import (
	"bytes"
	"context"
	"fmt"
	"net/smtp"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/conf"
	"github.com/mailvault/mailvault/cputime"
	"github.com/mailvault/mailvault/mailgen"
)

// BenchmarkIntake measures sustained journaled intake: 20 connections
// deliver distinct ~30 KB messages, each answered 250 only when durable. It
// reports messages/s and the p50/p99 time from end of DATA to 250. The
// tmpfs variant keeps the archive in memory to show the cost of the SMTP
// path and ingest without the disk's fsync latency.
func BenchmarkIntake(b *testing.B) {
	b.Run("storage=disk", func(b *testing.B) { benchIntake(b, b.TempDir()) })
	b.Run("storage=tmpfs", func(b *testing.B) {
		if fi, err := os.Stat("/dev/shm"); err != nil || !fi.IsDir() {
			b.Skip("no /dev/shm")
		}
		dir, err := os.MkdirTemp("/dev/shm", "smtpd-bench-")
		if err != nil {
			b.Skip(err)
		}
		defer os.RemoveAll(dir)
		benchIntake(b, dir)
	})
}

func benchIntake(b *testing.B, dir string) {
	const conns = 20
	p, err := backend.Open(backend.Options{DataDir: dir, Logger: testLogger(b), CommitDelay: conf.Default().Store.CommitDelay.Duration})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	createTenant(b, p, tenantSpec{name: "acme", domains: []string{"acme.example"}, networks: []string{"127.0.0.1"}})
	_, addr := startServer(b, p)

	g := mailgen.New(uint64(b.N), []string{"acme.example", "partner.example"}, 12)
	msgs := make([][]byte, b.N)
	var size int
	for i := range msgs {
		m := smtpForm(g.Next().Raw)
		size += len(m)
		msgs[i] = dotStuff(m)
	}
	clients := make([]*smtp.Client, conns)
	for i := range clients {
		c, err := smtp.Dial(addr)
		if err == nil {
			err = c.Hello("bench.test")
		}
		if err != nil {
			b.Fatal(err)
		}
		clients[i] = c
	}
	queue := make(chan int, b.N)
	for i := range msgs {
		queue <- i
	}
	close(queue)
	lat := make([]time.Duration, b.N)

	b.SetBytes(int64(size / max(1, b.N)))
	b.ResetTimer()
	start, cpu0 := time.Now(), cputime.Process()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range queue {
				if err := c.Mail("alice@acme.example"); err != nil {
					b.Error(err)
					return
				}
				if err := c.Rcpt("journal@acme.example"); err != nil {
					b.Error(err)
					return
				}
				d, err := sendStuffed(c, msgs[i])
				if err != nil {
					b.Error(err)
					return
				}
				lat[i] = d
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	// Until the index has caught up, the intake's CPU cost is not all paid.
	tn, err := p.Tenant(context.Background(), "acme")
	if err != nil {
		b.Fatal(err)
	}
	if err := tn.WaitIndexed(context.Background()); err != nil {
		b.Fatal(err)
	}
	cpu := cputime.Process() - cpu0
	b.StopTimer()
	for _, c := range clients {
		c.Quit()
	}
	slices.Sort(lat)
	rate := float64(b.N) / elapsed.Seconds()
	p50, p99 := lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	b.ReportMetric(rate, "msg/s")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	// CPU per message, senders, SMTP, ingest and indexing included: what
	// the intake would reach on 2 idle cores if the disk kept up.
	cpuPerMsg := cpu / time.Duration(b.N)
	b.ReportMetric(float64(cpuPerMsg.Microseconds())/1000, "cpu-ms/msg")
	if b.N >= 100 {
		fmt.Printf("%s: %d messages of %d bytes average over %d connections: %.0f messages/s, time to 250 p50 %v p99 %v; "+
			"CPU %v per message (incl. senders and indexing), i.e. %.0f messages/s on 2 idle cores\n",
			b.Name(), b.N, size/b.N, conns, rate, p50.Round(time.Microsecond), p99.Round(time.Microsecond),
			cpuPerMsg.Round(time.Microsecond), 2/cpuPerMsg.Seconds())
	}
}

// dotStuff returns msg (CRLF lines) dot-stuffed and ended by the DATA end
// marker, as an MTA sends it from its queue.
func dotStuff(msg []byte) []byte {
	out := bytes.ReplaceAll(msg, []byte("\r\n."), []byte("\r\n.."))
	if bytes.HasPrefix(out, []byte(".")) {
		out = append([]byte("."), out...)
	}
	return append(out, ".\r\n"...)
}

// sendStuffed sends DATA and the stuffed message in one write, and returns
// the time from the end marker to the reply. It spares the benchmark
// net/smtp's byte-by-byte dot writer: a sender's CPU is not the server's.
func sendStuffed(c *smtp.Client, stuffed []byte) (time.Duration, error) {
	id, err := c.Text.Cmd("DATA")
	if err != nil {
		return 0, err
	}
	c.Text.StartResponse(id)
	_, _, err = c.Text.ReadResponse(354)
	c.Text.EndResponse(id)
	if err != nil {
		return 0, err
	}
	if _, err := c.Text.W.Write(stuffed); err != nil {
		return 0, err
	}
	if err := c.Text.W.Flush(); err != nil {
		return 0, err
	}
	t0 := time.Now()
	if _, _, err := c.Text.ReadResponse(250); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}
