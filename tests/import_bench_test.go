package tests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailvault/mailvault/mailfile"
	"github.com/mailvault/mailvault/mailgen"
)

// BenchmarkImportCLI measures `mailvault import` of an mbox of 5,000
// generated messages (about 30 KB each) into a running server, end to end:
// reading the file, the import stream, parallel ingest and commits. Run with
// go test -run '^$' -bench ImportCLI -benchtime 3x ./tests/
func BenchmarkImportCLI(b *testing.B) {
	const n = 5000
	in := newInstance(b)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	g := mailgen.New(7, []string{"acme.example", "partner.example"}, 20)
	var total int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// Fresh messages every round, so that none is a duplicate.
		var mbox bytes.Buffer
		for j := 0; j < n; j++ {
			m := g.Next()
			if err := mailfile.WriteMboxrd(&mbox, m.Raw, "bob@partner.example", m.Date); err != nil {
				b.Fatal(err)
			}
		}
		p := filepath.Join(b.TempDir(), fmt.Sprintf("round%d.mbox", i))
		if err := os.WriteFile(p, mbox.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(mbox.Len())
		b.StartTimer()
		in.mustCLI("import", "-quiet", "-tenant", "acme", "-mailbox", "alice@acme.example", p)
	}
	el := b.Elapsed()
	b.ReportMetric(float64(n*b.N)/el.Seconds(), "msg/s")
	b.ReportMetric(float64(total)/1e6/el.Seconds(), "MB/s")
}
