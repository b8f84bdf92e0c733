package backend

import (
	"encoding/binary"
	"fmt"

	"github.com/mailvault/mailvault/mailparse"
)

// A summary record holds the message's Head (header block and MIME tree in
// mailparse's binary form, for listings by header fields or structure)
// followed by the Summary's JSON: a 0 byte, the head's length as a uvarint,
// the head, the JSON. Records written before heads existed are the JSON
// alone, which starts with '{'; like every record of a parser before
// mailparse.Version, they are derived again from the message (reparse.go).

// encodeSummary returns the summary record of raw, whose Summary is s.
func encodeSummary(raw []byte, s *mailparse.Summary) ([]byte, error) {
	js, err := s.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode summary: %w", err)
	}
	return withHead(mailparse.AppendHead(nil, raw, s), js), nil
}

func withHead(head, js []byte) []byte {
	rec := make([]byte, 0, 1+binary.MaxVarintLen64+len(head)+len(js))
	rec = append(rec, 0)
	rec = binary.AppendUvarint(rec, uint64(len(head)))
	rec = append(rec, head...)
	return append(rec, js...)
}

// splitRecord returns the head (nil in an older record) and the JSON of a
// summary record. A malformed frame gives an empty JSON, which does not
// decode.
func splitRecord(rec []byte) (head, js []byte) {
	if len(rec) == 0 || rec[0] != 0 {
		return nil, rec
	}
	n, k := binary.Uvarint(rec[1:])
	if k <= 0 || n > uint64(len(rec)-1-k) {
		return nil, nil
	}
	return rec[1+k : 1+k+int(n)], rec[1+k+int(n):]
}
