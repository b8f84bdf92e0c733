package backend

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/mailvault/mailvault/index"
	"github.com/mailvault/mailvault/mailgen"
)

// TestSegmentNeedBoundsSegments writes the segments of indexer batches
// into a fresh index, whose first batches bring the most words new to it
// (the substring vocabulary holds every suffix of those), and checks that
// each segment takes at most segmentNeed of its text. The documents are
// built as the indexer builds them, from generated mail and from the
// real-world corpus when present; MAILVAULT_SEGMENT_MESSAGES sets how many
// generated messages (default 1000), MAILVAULT_SEGMENT_CORPUS how many of
// the corpus (default 256). -v prints the ratios.
func TestSegmentNeedBoundsSegments(t *testing.T) {
	ctx := context.Background()
	p := openProvider(t, t.TempDir())
	defer p.Close()
	tn := newTenant(t, p, "acme", "acme.example")
	g := mailgen.New(7, []string{"acme.example", "partner.example"}, 40)
	g.AvgSize = 8 << 10
	n := envInt("MAILVAULT_SEGMENT_MESSAGES", 1000)
	var gen [][]byte
	for range n {
		gen = append(gen, g.Next().Raw)
	}
	sources := []struct {
		name string
		raws [][]byte
	}{{"generated", gen}}
	if d := filepath.Join("..", "..", "shared", "corpus", "messages"); dirExists(d) {
		files, _ := filepath.Glob(filepath.Join(d, "*.eml"))
		if n := envInt("MAILVAULT_SEGMENT_CORPUS", 256); n < len(files) {
			files = files[:n]
		}
		var corpus [][]byte
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			corpus = append(corpus, raw)
		}
		sources = append(sources, struct {
			name string
			raws [][]byte
		}{"corpus", corpus})
	}
	for _, src := range sources {
		mids := ingestAll(t, tn, src.raws)
		docs := make([]index.Doc, len(mids))
		for i, mid := range mids {
			d, err := tn.indexDoc(ctx, mid, nil)
			if err != nil {
				t.Fatal(err)
			}
			docs[i] = d
		}
		// Small batches as live intake makes them, and batches as large
		// as the indexer makes them in a catch-up.
		for _, per := range []int{64, minQuietBatch, maxIndexBatch} {
			if per > minQuietBatch && len(docs) <= minQuietBatch {
				break // one batch of all, as before
			}
			var ratios []float64
			for _, b := range segmentBatches(t, docs, per) {
				if b.written > segmentNeed(b.text) {
					t.Errorf("%s, batches of %d: a segment of %d bytes for %d bytes of text; segmentNeed allows %d", src.name, per, b.written, b.text, segmentNeed(b.text))
				}
				ratios = append(ratios, float64(b.written)/float64(b.text))
			}
			slices.Sort(ratios)
			t.Logf("%s, %d messages in batches of up to %d: %d segments, bytes written per byte of text: median %.2f, max %.2f",
				src.name, len(docs), per, len(ratios), ratios[len(ratios)/2], ratios[len(ratios)-1])
		}
	}
}

// ingestAll archives raws in alice's mailbox, several at a time so that
// they share commits, and returns the MIDs of the new ones in the order of
// raws.
func ingestAll(t *testing.T, tn *Tenant, raws [][]byte) []uint64 {
	t.Helper()
	mids := make([]uint64, len(raws))
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				res, err := tn.Ingest(context.Background(), raws[i], Source{Mailbox: "alice@acme.example"})
				if err != nil {
					t.Error(err)
					continue
				}
				if !res.Duplicate {
					mids[i] = res.MID
				}
			}
		}()
	}
	for i := range raws {
		next <- i
	}
	close(next)
	wg.Wait()
	return slices.DeleteFunc(mids, func(m uint64) bool { return m == 0 })
}

type segmentBatch struct{ text, written int64 }

// segmentBatches commits docs in batches of up to per documents and
// maxBatchBytes of text, up to 16 of them, and returns each batch's text
// and the bytes its commit added to the index. Each batch goes into an
// index of its own: every word is new to it, as in the first batches of a
// tenant or of a rebuild, and no merge of earlier segments runs meanwhile.
func segmentBatches(t *testing.T, docs []index.Doc, per int) []segmentBatch {
	t.Helper()
	var out []segmentBatch
	for lo := 0; lo < len(docs) && len(out) < 16; {
		hi, text := lo, int64(0)
		for hi < len(docs) && hi-lo < per && (hi == lo || text+docText(docs[hi]) <= maxBatchBytes) {
			text += docText(docs[hi])
			hi++
		}
		dir := t.TempDir()
		ix, err := index.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		before := dirFiles(t, dir)
		pb, err := ix.Prepare(context.Background(), docs[lo:hi])
		if err != nil {
			t.Fatal(err)
		}
		if err := ix.Commit(context.Background(), pb, docs[hi-1].MID); err != nil {
			t.Fatal(err)
		}
		var written int64
		for name, size := range dirFiles(t, dir) {
			written += max(size-before[name], 0)
		}
		if err := ix.Close(); err != nil {
			t.Fatal(err)
		}
		out = append(out, segmentBatch{text, written})
		lo = hi
	}
	return out
}

func dirFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // an old snapshot removed meanwhile
		}
		if err != nil {
			return err
		}
		out[path] = fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func dirExists(d string) bool {
	fi, err := os.Stat(d)
	return err == nil && fi.IsDir()
}
