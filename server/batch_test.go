package server

import (
	"bufio"
	"bytes"
	"io"
	"testing"
	"time"
)

// FuzzBatchRecord: the import stream parser never panics, and what
// WriteBatchRecord writes reads back exactly.
func FuzzBatchRecord(f *testing.F) {
	f.Add([]byte("From: a@b\r\n\r\nbody\r\n"), "Archive/2019", int64(1700000000))
	f.Add([]byte(""), "", int64(0))
	f.Add([]byte("MV1 5 - 0\nabcde\n"), "a b/ü", int64(-5))
	f.Fuzz(func(t *testing.T, raw []byte, folder string, date int64) {
		// Arbitrary input as a stream: must not panic.
		br := bufio.NewReader(bytes.NewReader(raw))
		for i := 0; i < 100; i++ {
			if _, err := ReadBatchRecord(br); err != nil {
				break
			}
		}
		var d time.Time
		if date != 0 {
			d = time.Unix(date, 0)
		}
		var buf bytes.Buffer
		in := BatchRecord{Folder: folder, Date: d, Raw: raw}
		if err := WriteBatchRecord(&buf, in); err != nil {
			t.Fatal(err)
		}
		got, err := ReadBatchRecord(bufio.NewReader(&buf))
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		if !bytes.Equal(got.Raw, raw) || got.Folder != folder || !got.Date.Equal(d) {
			t.Fatalf("round trip: %+v != %+v", got, in)
		}
		if _, err := ReadBatchRecord(bufio.NewReader(&buf)); err != io.EOF {
			t.Fatalf("after the record: %v", err)
		}
	})
}
