package imapd

import (
	"math"
	"slices"

	"github.com/emersion/go-imap/v2"

	"github.com/mailvault/mailvault/mailparse"
)

// ENVELOPE and BODYSTRUCTURE come from the Summary stored at ingest; these
// functions only change its shape.

func envelope(e *mailparse.Envelope) *imap.Envelope {
	if e == nil {
		return &imap.Envelope{}
	}
	env := &imap.Envelope{
		Date:      e.Date,
		RawDate:   e.RawDate,
		Subject:   e.Subject,
		From:      addresses(e.From),
		To:        addresses(e.To),
		Cc:        addresses(e.Cc),
		Bcc:       addresses(e.Bcc),
		InReplyTo: e.InReplyTo,
		MessageID: e.MessageID,
	}
	// The library writes From for a nil Sender or Reply-To, as they mostly
	// are From: no need to convert the list three times.
	if !slices.Equal(e.Sender, e.From) {
		env.Sender = addresses(e.Sender)
	}
	if !slices.Equal(e.ReplyTo, e.From) {
		env.ReplyTo = addresses(e.ReplyTo)
	}
	return env
}

// addresses converts an address list. Groups are written as RFC 3501
// 7.4.2 has them: a start marker (NIL host, the group's name as mailbox),
// the members, an end marker (all NIL). Because a NIL host starts a group,
// parts missing in broken mail are named as Dovecot names them.
func addresses(l []mailparse.Address) []imap.Address {
	if len(l) == 0 {
		return nil
	}
	out := make([]imap.Address, len(l))
	for i, a := range l {
		switch a.Group {
		case mailparse.GroupStart:
			out[i] = imap.Address{Mailbox: a.Name}
			continue
		case mailparse.GroupEnd:
			continue
		}
		out[i] = imap.Address{Name: a.Name, ADL: a.Route, Mailbox: a.LocalPart(), Host: a.Host}
		if out[i].Mailbox == "" {
			out[i].Mailbox = "MISSING_MAILBOX"
		}
		if out[i].Host == "" {
			out[i].Host = "MISSING_DOMAIN"
		}
	}
	return out
}

// bodyStructure converts a MIME tree; the result is always extended, which
// serves BODY and BODYSTRUCTURE alike.
func bodyStructure(p *mailparse.Part) imap.BodyStructure {
	if p == nil {
		return emptyText()
	}
	if p.Type == "multipart" && len(p.Children) > 0 {
		mp := &imap.BodyStructureMultiPart{
			Subtype: p.Subtype,
			Extended: &imap.BodyStructureMultiPartExt{
				Params: p.Params, Disposition: disposition(p), Language: p.Language, Location: p.Location,
			},
		}
		mp.Children = make([]imap.BodyStructure, len(p.Children))
		for i, c := range p.Children {
			mp.Children[i] = bodyStructure(c)
		}
		return mp
	}
	params := p.Params
	if p.Type == "text" && params["charset"] == "" {
		params = withUSASCII(params)
	}
	sp := &imap.BodyStructureSinglePart{
		Type: p.Type, Subtype: p.Subtype, Params: params, ID: p.ID, Description: p.Description,
		Encoding: p.Encoding, Size: uint32(min(p.Size+p.BareLFs, math.MaxUint32)),
		Extended: &imap.BodyStructureSinglePartExt{Disposition: disposition(p), Language: p.Language, Location: p.Location},
	}
	if p.Type == "multipart" {
		// A multipart without parts cannot be written; mailparse never
		// makes one, but a damaged summary must not end the connection.
		sp.Type, sp.Subtype = "application", "octet-stream"
	}
	switch {
	case p.Type == "text":
		sp.Text = &imap.BodyStructureText{NumLines: p.Lines}
	case p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global"):
		// The grammar requires envelope and body; an embedded message that
		// could not be parsed in place (transfer-encoded) gets empty ones.
		msg := &imap.BodyStructureMessageRFC822{Envelope: envelope(p.MessageEnvelope), NumLines: p.Lines}
		if p.Message != nil {
			msg.BodyStructure = bodyStructure(p.Message)
		} else {
			msg.BodyStructure = emptyText()
		}
		sp.MessageRFC822 = msg
	}
	return sp
}

// usASCII is the parameter list of text without any: RFC 2045 5.2 makes
// its charset US-ASCII, and Dovecot and Cyrus say so in BODYSTRUCTURE.
// Shared and never written to.
var usASCII = map[string]string{"charset": "us-ascii"}

// withUSASCII returns text parameters with the default charset added.
func withUSASCII(params map[string]string) map[string]string {
	if len(params) == 0 {
		return usASCII
	}
	out := make(map[string]string, len(params)+1)
	for k, v := range params {
		out[k] = v
	}
	out["charset"] = "us-ascii"
	return out
}

func emptyText() *imap.BodyStructureSinglePart {
	return &imap.BodyStructureSinglePart{
		Type: "text", Subtype: "plain", Encoding: "7BIT",
		Text: &imap.BodyStructureText{}, Extended: &imap.BodyStructureSinglePartExt{},
	}
}

func disposition(p *mailparse.Part) *imap.BodyStructureDisposition {
	if p.Disposition == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: p.Disposition, Params: p.DispositionParams}
}
