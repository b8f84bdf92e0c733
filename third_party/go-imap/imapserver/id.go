package imapserver

// The ID command (RFC 2971). mailvault patch, see third_party/README.md.

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// SessionID is an IMAP session that answers the ID command (RFC 2971),
// which clients send in any state, often before logging in.
type SessionID interface {
	Session

	// ID is given what the client said about itself (nil for "ID NIL") and
	// returns what the server says about itself (nil for NIL).
	ID(client *imap.IDData) *imap.IDData
}

func (c *Conn) handleID(dec *imapwire.Decoder) error {
	client, err := readID(dec)
	if err != nil {
		return err
	}
	sess, ok := c.session.(SessionID)
	if !ok {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unknown command"}
	}
	fields := idFields(sess.ID(client))

	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("ID").SP()
	if len(fields) == 0 {
		enc.NIL()
	} else {
		enc.List(len(fields)/2, func(i int) {
			enc.String(fields[2*i]).SP().String(fields[2*i+1])
		})
	}
	return enc.CRLF()
}

// readID reads the ID command's arguments: NIL or a list of field names
// (strings) and values (nstrings).
func readID(dec *imapwire.Decoder) (*imap.IDData, error) {
	if !dec.ExpectSP() {
		return nil, dec.Err()
	}
	var atom string
	if dec.Atom(&atom) {
		if !dec.Expect(atom == "NIL", "NIL") || !dec.ExpectCRLF() {
			return nil, dec.Err()
		}
		return nil, nil
	}
	var data imap.IDData
	err := dec.ExpectList(func() error {
		var key, value string
		if !dec.ExpectString(&key) || !dec.ExpectSP() || !dec.ExpectNString(&value) {
			return dec.Err()
		}
		if p := idField(&data, key); p != nil {
			*p = value
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !dec.ExpectCRLF() {
		return nil, dec.Err()
	}
	return &data, nil
}

// idField returns the field of data that an ID field name (RFC 2971 section
// 3.3, case-insensitive) stands for, or nil for a name it has none for.
func idField(data *imap.IDData, name string) *string {
	switch strings.ToLower(name) {
	case "name":
		return &data.Name
	case "version":
		return &data.Version
	case "os":
		return &data.OS
	case "os-version":
		return &data.OSVersion
	case "vendor":
		return &data.Vendor
	case "support-url":
		return &data.SupportURL
	case "address":
		return &data.Address
	case "date":
		return &data.Date
	case "command":
		return &data.Command
	case "arguments":
		return &data.Arguments
	case "environment":
		return &data.Environment
	}
	return nil
}

// idNames are the field names of RFC 2971 section 3.3, in its order.
var idNames = []string{"name", "version", "os", "os-version", "vendor", "support-url", "address", "date", "command", "arguments", "environment"}

// idFields lists the set fields of data as name, value, name, value...
func idFields(data *imap.IDData) []string {
	if data == nil {
		return nil
	}
	var out []string
	for _, name := range idNames {
		if v := *idField(data, name); v != "" {
			out = append(out, name, v)
		}
	}
	return out
}
