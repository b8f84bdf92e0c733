package mailparse

import (
	"fmt"
	"io"
	"mime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

const (
	defaultMaxText = 1 << 20
	// maxDepth bounds nesting of multiparts and embedded messages, so hostile
	// input cannot exhaust the stack.
	maxDepth = 32
	// maxParts bounds the MIME tree, so a small message of empty parts cannot
	// make the Summary huge.
	maxParts = 10000
	// maxProblems keeps the stored Summary small for badly broken input.
	maxProblems = 32
	// maxProblemLen clips problems quoting long header values.
	maxProblemLen = 200
	previewRunes  = 256
)

// Options tunes Parse.
type Options struct {
	// MaxText caps Summary.Text in bytes; 0 means 1 MiB, negative disables
	// text extraction (and with it the preview).
	MaxText int
}

// Summary is everything the archive needs to know about a message without
// reading it again.
type Summary struct {
	Envelope Envelope `json:"e"`
	// Structure is the MIME tree of the whole message (the root part).
	Structure *Part `json:"s"`
	// Text is the decoded text of every text/* part in document order
	// (text/html reduced to text, attachments included), joined by "\n" and
	// capped at Options.MaxText on a UTF-8 boundary. It is not stored by
	// MarshalBinary: it goes to the full-text index.
	Text string `json:"-"`
	// Attachments lists attachment file names, RFC 2231/2047 decoded, in
	// document order, including those inside embedded messages.
	Attachments   []string `json:"a,omitempty"`
	HasAttachment bool     `json:"ha,omitempty"`
	// Preview is the start of Text, whitespace collapsed, at most 256 characters.
	Preview string `json:"pv,omitempty"`
	// Headers holds every top-level header field in order, the name as
	// written and the value unfolded and RFC 2047-decoded. MarshalBinary
	// stores them as [name, value] pairs.
	Headers []Header `json:"-"`
	// References holds the Message-IDs of the References field, without <>.
	References []string `json:"r,omitempty"`
	// Problems says, human readable, what could not be parsed.
	Problems []string `json:"x,omitempty"`
}

// Header is one header field.
type Header struct {
	Name, Value string
}

// Address is Mailbox@Host with an optional display name, or a group marker
// (see GroupMark). It is stored as a JSON array: [name, mailbox, host],
// [name, mailbox, host, route] with a source route, [name] for a group's
// start and [] for its end.
type Address struct {
	Name, Mailbox, Host string
	// Route is an obsolete source route (RFC 5322 4.4), like
	// "@relay.example,@mx.example": IMAP's at-domain-list.
	Route string
	Group GroupMark
}

// IsGroupMark reports whether a is a group's start or end, not an address.
func (a *Address) IsGroupMark() bool { return a.Group != NoGroup }

// LocalPart returns the mailbox with its RFC 5322 quoting removed, as IMAP
// writes it (RFC 3501, addr-mailbox) and SORT compares it (RFC 5256).
func (a *Address) LocalPart() string {
	if strings.IndexByte(a.Mailbox, '"') < 0 {
		return a.Mailbox
	}
	var b strings.Builder
	quoted := false
	for i := 0; i < len(a.Mailbox); i++ {
		c := a.Mailbox[i]
		switch {
		case c == '"':
			quoted = !quoted
			continue
		case c == '\\' && quoted && i+1 < len(a.Mailbox):
			i++
			c = a.Mailbox[i]
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Email returns mailbox@host, or the mailbox alone when it has no host.
func (a *Address) Email() string {
	if a.Host == "" {
		return a.Mailbox
	}
	return a.Mailbox + "@" + a.Host
}

// EnvelopeDateLayout is how IMAP's ENVELOPE writes a parsed date.
const EnvelopeDateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// Envelope holds the fields of an IMAP ENVELOPE (RFC 3501 7.4.2).
type Envelope struct {
	// Date is zero when absent or unparsable, and clamped to the years
	// 1900..2200.
	Date time.Time `json:"d,omitzero"`
	// RawDate is the Date field's value, unfolded and trimmed, when it is
	// not Date written in EnvelopeDateLayout (then it is empty) and has no
	// control characters. Records stored before it existed have none.
	RawDate string    `json:"dr,omitempty"`
	Subject string    `json:"s,omitempty"`
	From    []Address `json:"f,omitempty"`
	// Sender and ReplyTo are From when their fields are absent, empty
	// (not nil) when they name nobody.
	Sender  []Address `json:"se,omitempty"`
	ReplyTo []Address `json:"rt,omitempty"`
	To      []Address `json:"to,omitempty"`
	Cc      []Address `json:"cc,omitempty"`
	Bcc     []Address `json:"bcc,omitempty"`
	// InReplyTo and MessageID are without <>.
	InReplyTo []string `json:"irt,omitempty"`
	MessageID string   `json:"id,omitempty"`
}

// Part is one node of the MIME tree, with byte offsets into the raw message
// so any IMAP section can be served by slicing it.
type Part struct {
	// Type and Subtype are lower case. A missing Content-Type means
	// text/plain (message/rfc822 inside multipart/digest); an unparsable one
	// application/octet-stream.
	Type    string `json:"t"`
	Subtype string `json:"st"`
	// Params has lower-case keys and RFC 2231/2047-decoded values.
	Params map[string]string `json:"p,omitempty"`
	// ID is the Content-ID as written, with its angle brackets.
	ID          string `json:"id,omitempty"`
	Description string `json:"de,omitempty"`
	// Encoding is the Content-Transfer-Encoding in upper case as IMAP
	// wants it ("7BIT", "BASE64", "QUOTED-PRINTABLE", ...); "7BIT" when absent.
	Encoding          string            `json:"en"`
	Disposition       string            `json:"di,omitempty"`
	DispositionParams map[string]string `json:"dp,omitempty"`
	Language          []string          `json:"l,omitempty"`
	Location          string            `json:"lo,omitempty"`
	MD5               string            `json:"m,omitempty"`
	// Size is the encoded body size in bytes, End-BodyStart (not stored).
	Size int64 `json:"-"`
	// DecodedSize is the body size after transfer decoding (JMAP's size),
	// computed without decoding base64; 0 for multiparts.
	DecodedSize int64 `json:"ds,omitempty"`
	// Lines counts the lines of the encoded body of text/* and
	// message/rfc822 (or message/global) parts.
	Lines int64 `json:"n,omitempty"`
	// BareLFs counts the line feeds without a carriage return before them
	// in the body of a part without children: IMAP presents each as CRLF,
	// so its body is Size+BareLFs bytes there.
	BareLFs int64 `json:"lf,omitempty"`
	// [HeaderStart,BodyStart) is the part's header including the blank line,
	// [BodyStart,End) its body.
	HeaderStart int64 `json:"hs"`
	BodyStart   int64 `json:"bs"`
	End         int64 `json:"e"`
	// Children are the parts of a multipart; a multipart always has one.
	Children []*Part `json:"c,omitempty"`
	// Message and MessageEnvelope describe the message embedded in a
	// message/rfc822 or message/global part. They are nil when it cannot be
	// parsed in place (transfer-encoded, or nested too deep).
	Message         *Part     `json:"msg,omitempty"`
	MessageEnvelope *Envelope `json:"env,omitempty"`
}

// FileName returns the part's file name from Content-Disposition's filename
// or else Content-Type's name parameter, "" if it has none.
func (p *Part) FileName() string {
	if name := p.DispositionParams["filename"]; name != "" {
		return name
	}
	return p.Params["name"]
}

// IsAttachment reports whether the part is an attachment rather than part of
// the message body.
func (p *Part) IsAttachment() bool {
	switch {
	case p.Type == "multipart":
		return false
	case p.Disposition == "attachment":
		return true
	case p.ID != "" && p.Type == "image":
		// Referenced from the HTML body by cid: (logos, signatures).
		return false
	case p.FileName() != "":
		return true
	case p.Type == "text":
		return false
	case p.Type == "message":
		// A forwarded message is an attachment, a delivery report is body.
		return (p.Subtype == "rfc822" || p.Subtype == "global") && p.Disposition != "inline"
	default:
		return p.Disposition != "inline"
	}
}

// Version names what Parse derives from a message. It is raised whenever
// the Summary or Head of some message changes (a field added, a field read
// differently), so that summaries stored by an older parser are derived
// again from their messages; records stored before versions existed count
// as 0. Version 1 is the first with bare-LF counts per part, address
// groups and source routes, and the Date field as written.
const Version = 1

// Parse summarises raw, one message exactly as archived. It never fails: what
// cannot be parsed is recorded in Summary.Problems. Parse does not keep raw.
func Parse(raw []byte, opt Options) *Summary {
	p := parser{raw: raw, sum: &Summary{}, maxText: opt.MaxText}
	if p.maxText == 0 {
		p.maxText = defaultMaxText
	}
	p.words.CharsetReader = p.charsetReader
	p.sum.Structure = p.parsePart(0, len(raw), 0, false, &p.sum.Envelope)
	p.extractTexts()
	p.sum.Preview = preview(p.sum.Text)
	if p.droppedProblems > 0 {
		p.sum.Problems = append(p.sum.Problems, strconv.Itoa(p.droppedProblems)+" further problems not recorded")
	}
	return p.sum
}

// parser holds the state of one Parse call.
type parser struct {
	raw     []byte
	sum     *Summary
	maxText int
	words   mime.WordDecoder
	fields  []field // header fields of the part being parsed
	path    []int   // IMAP part number of the part being parsed, for problems
	parts   int
	// textParts are the text/* parts whose text goes into Summary.Text,
	// extracted once the structure is known.
	textParts []textPart
	text      []byte // Summary.Text being built
	// Scratch buffers for transfer decoding and charset conversion, reused
	// across parts.
	decodeBuf, charsetBuf []byte
	droppedProblems       int
}

func (p *parser) problem(format string, args ...any) {
	if len(p.sum.Problems) >= maxProblems {
		p.droppedProblems++
		return
	}
	msg := strings.ToValidUTF8(fmt.Sprintf(format, args...), "\uFFFD")
	if len(msg) > maxProblemLen {
		cut := maxProblemLen
		for !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	if len(p.path) > 0 {
		var b strings.Builder
		b.WriteString("part ")
		for i, n := range p.path {
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(strconv.Itoa(n))
		}
		b.WriteString(": ")
		b.WriteString(msg)
		msg = b.String()
	}
	p.sum.Problems = append(p.sum.Problems, msg)
}

// charsetReader lets RFC 2047 words in unknown charsets through undecoded,
// instead of failing the whole field; the result is made valid UTF-8 later.
func (p *parser) charsetReader(label string, r io.Reader) (io.Reader, error) {
	cr, err := charset.Reader(label, r)
	if err != nil {
		p.problem("encoded word: %v", err)
		return r, nil
	}
	return cr, nil
}

// parsePart parses the part in raw[start:end]. env is non-nil when the part
// is a message (the root or an embedded message), whose envelope it fills.
func (p *parser) parsePart(start, end, depth int, inDigest bool, env *Envelope) *Part {
	p.parts++
	part := &Part{HeaderStart: int64(start), End: int64(end), Type: "text", Subtype: "plain", Encoding: "7BIT"}
	if inDigest {
		part.Type, part.Subtype = "message", "rfc822"
	}
	bodyStart := p.scanHeader(start, end)
	part.BodyStart = int64(bodyStart)
	part.Size = part.End - part.BodyStart
	idx := p.indexFields()
	if env != nil {
		p.envelope(env, &idx)
	}
	if depth == 0 {
		p.topLevel(&idx)
	} else if env != nil && p.maxText > 0 {
		if h := p.shownHeader(); h != "" {
			p.textParts = append(p.textParts, textPart{path: slices.Clone(p.path), header: h})
		}
	}
	p.contentFields(part, &idx)

	if part.Type == "multipart" {
		switch {
		case depth >= maxDepth:
			p.problem("multipart nested deeper than %d, treated as application/octet-stream", maxDepth)
			part.Type, part.Subtype = "application", "octet-stream"
		case !p.multipart(part, depth):
			part.Type, part.Subtype = "text", "plain"
		}
	}
	if part.Type != "multipart" {
		p.leaf(part, depth)
	}
	return part
}

// leaf handles a part without children: sizes, attachment name, text, and
// the embedded message of message/rfc822.
func (p *parser) leaf(part *Part, depth int) {
	body := p.raw[part.BodyStart:part.End]
	embedded := part.Type == "message" && (part.Subtype == "rfc822" || part.Subtype == "global")
	if part.Type == "text" || embedded {
		part.Lines = countLines(body)
	}
	part.BareLFs = BareLFs(body)
	switch part.Encoding {
	case "BASE64":
		part.DecodedSize = int64(base64DecodedLen(body))
	case "QUOTED-PRINTABLE":
		part.DecodedSize = int64(qpDecodedLen(body))
	default:
		part.DecodedSize = part.Size
	}
	if part.IsAttachment() {
		p.sum.HasAttachment = true
		if name := part.FileName(); name != "" {
			p.sum.Attachments = append(p.sum.Attachments, name)
		}
	}
	switch {
	case part.Type == "text":
		if p.maxText > 0 {
			p.textParts = append(p.textParts, textPart{part: part, path: slices.Clone(p.path)})
		}
	case embedded:
		switch {
		case !identityEncoding(part.Encoding):
			p.problem("embedded message with transfer encoding %s is not parsed", part.Encoding)
		case depth >= maxDepth:
			p.problem("embedded message nested deeper than %d is not parsed", maxDepth)
		default:
			part.MessageEnvelope = new(Envelope)
			part.Message = p.parsePart(int(part.BodyStart), int(part.End), depth+1, false, part.MessageEnvelope)
		}
	}
}

func identityEncoding(enc string) bool {
	return enc == "7BIT" || enc == "8BIT" || enc == "BINARY"
}
