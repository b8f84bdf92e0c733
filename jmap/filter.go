package jmap

import (
	"encoding/json"
	"errors"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/index"
)

// decodeFilter decodes the filter argument of Email/query and
// SearchSnippet/get; null or absent is nil (everything).
func decodeFilter(raw json.RawMessage) (*backend.Filter, error) {
	f, err := backend.ParseFilter(raw)
	return f, filterError(err)
}

// compileFilter turns a filter into an index query (backend.Filter.Query).
func compileFilter(f *backend.Filter, sc *backend.FilterScope, mids backend.FolderMIDs, folderID func(string) (uint64, bool)) (index.Query, error) {
	q, err := f.Query(sc, mids, folderID)
	return q, filterError(err)
}

// filterError turns a filter the backend cannot run into the method error
// RFC 8621 4.4 names; other errors pass unchanged.
func filterError(err error) error {
	var fe *backend.FilterError
	if !errors.As(err, &fe) {
		return err
	}
	if fe.Unsupported {
		return &methodError{Type: "unsupportedFilter", Description: fe.Msg}
	}
	return invalidArguments("%s", fe.Msg)
}
