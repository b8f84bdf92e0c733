package imapd

import (
	"math/rand/v2"
	"testing"

	"github.com/mailvault/mailvault/backend"
)

// BenchmarkReferences threads 100,000 messages of synthetic keys (threads
// of up to 20 replies, each referencing its ancestors, a third of the
// threads' roots missing) with THREAD=REFERENCES, without IMAP around it:
//
//	go test -run '^$' -bench References -benchtime 20x ./imapd/
func BenchmarkReferences(b *testing.B) {
	const n = 100000
	rng := rand.New(rand.NewPCG(3, 4))
	keys := make([]backend.ThreadKey, n)
	var open [][]uint64 // reference chains of threads under way
	subjects := make([]string, 5000)
	for i := range subjects {
		subjects[i] = "SUBJECT OF SOME THREAD NUMBER " + string(rune('A'+i%26)) + string(rune('a'+i/26%26)) + string(rune('0'+i/676))
	}
	for i := range keys {
		k := &keys[i]
		k.ID = rng.Uint64()
		k.Sent = int64(1700000000 + i*60 - rng.IntN(3600))
		s := subjects[rng.IntN(len(subjects))]
		if len(open) > 0 && rng.IntN(3) > 0 {
			j := rng.IntN(len(open))
			k.Refs = append([]uint64(nil), open[j]...)
			k.Reply = true
			open[j] = append(open[j], k.ID)
			if len(open[j]) > 20 {
				open[j] = open[j][len(open[j])-1:]
			}
		} else {
			chain := []uint64{k.ID}
			if rng.IntN(3) == 0 {
				chain = []uint64{rng.Uint64(), k.ID} // the root is not here
				k.Refs = chain[:1]
			}
			open = append(open, chain)
		}
		k.Subject = s
		k.SubjectHash = uint64(rng.IntN(len(subjects))) + 1
	}
	msgs := make([]sorted, n)
	for i := range msgs {
		msgs[i] = sorted{pos: i, key: &keys[i]}
	}
	num := func(m *sorted) uint32 { return uint32(m.pos + 1) }
	b.ResetTimer()
	for range b.N {
		references(msgs, num)
	}
}
