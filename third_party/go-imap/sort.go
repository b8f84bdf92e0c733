package imap

// The SORT and THREAD extensions (RFC 5256). mailvault patch, see
// third_party/README.md: these types were in imapclient only; the server
// needs them too.

// SortKey is a SORT criterion's key.
type SortKey string

const (
	SortKeyArrival SortKey = "ARRIVAL"
	SortKeyCc      SortKey = "CC"
	SortKeyDate    SortKey = "DATE"
	SortKeyFrom    SortKey = "FROM"
	SortKeySize    SortKey = "SIZE"
	SortKeySubject SortKey = "SUBJECT"
	SortKeyTo      SortKey = "TO"
)

// SortCriterion is one key of a SORT command, optionally reversed.
type SortCriterion struct {
	Key     SortKey
	Reverse bool
}

// ThreadData is one thread of a THREAD response: Chain lists messages each
// of which is the parent of the next, SubThreads the children of the last
// one (or, with an empty Chain, the threads under a missing parent).
type ThreadData struct {
	Chain      []uint32
	SubThreads []ThreadData
}
