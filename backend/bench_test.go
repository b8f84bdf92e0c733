package backend

import (
	"context"
	"testing"

	"github.com/mailvault/mailvault/mailgen"
)

// BenchmarkEnvelope reads the stored envelope of every message of a folder,
// as an IMAP client's first listing does (FETCH 1:* ENVELOPE).
func BenchmarkEnvelope(b *testing.B) {
	p := openProvider(b, b.TempDir())
	defer p.Close()
	tn := newTenant(b, p, "acme", "acme.example")
	ctx := context.Background()
	g := mailgen.New(1, []string{"acme.example"}, 20)
	g.AvgSize = 4 << 10
	const n = 3000
	for i := 0; i < n; i++ {
		if _, err := tn.Ingest(ctx, g.Next().Raw, Source{Mailbox: "alice@acme.example"}); err != nil {
			b.Fatal(err)
		}
	}
	if err := tn.WaitIndexed(ctx); err != nil {
		b.Fatal(err)
	}
	snap, err := tn.Snapshot("alice@acme.example", folderID(b, tn, "alice@acme.example", FolderInbox))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, mid := range snap.MIDs {
			if _, err := tn.Envelope(ctx, mid); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(snap.MIDs))/1000, "µs/envelope")
}
