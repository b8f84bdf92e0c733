package jmap

import (
	"slices"
	"strconv"
	"strings"

	"github.com/mailvault/mailvault/mailparse"
)

// bodyPart is a node of an Email's bodyStructure (RFC 8621 4.1.4), made
// from the MIME tree stored at ingest. It does not descend into attached
// messages: a message/rfc822 part is a leaf.
type bodyPart struct {
	p      *mailparse.Part
	partID string // IMAP section number; "" for multiparts
	sub    []*bodyPart
}

var bodyPartProperties = []string{"partId", "blobId", "size", "headers", "name", "type", "charset",
	"disposition", "cid", "language", "location", "subParts"}

var defaultBodyProperties = []string{"partId", "blobId", "size", "name", "type", "charset",
	"disposition", "cid", "language", "location"}

// buildParts makes the bodyStructure tree; part ids are the IMAP section
// numbers, so "2.1" is BODY[2.1] in IMAP as well.
func buildParts(root *mailparse.Part) *bodyPart {
	if root == nil {
		return nil
	}
	if root.Type != "multipart" {
		return &bodyPart{p: root, partID: "1"}
	}
	return buildMultipart(root, "")
}

func buildMultipart(p *mailparse.Part, prefix string) *bodyPart {
	bp := &bodyPart{p: p}
	for i, c := range p.Children {
		id := strconv.Itoa(i + 1)
		if prefix != "" {
			id = prefix + "." + id
		}
		if c.Type == "multipart" {
			bp.sub = append(bp.sub, buildMultipart(c, id))
		} else {
			bp.sub = append(bp.sub, &bodyPart{p: c, partID: id})
		}
	}
	return bp
}

func (bp *bodyPart) mediaType() string { return bp.p.Type + "/" + bp.p.Subtype }

func isInlineMediaType(t string) bool {
	return strings.HasPrefix(t, "image/") || strings.HasPrefix(t, "audio/") || strings.HasPrefix(t, "video/")
}

// classify sorts the leaves into textBody, htmlBody and attachments with
// the algorithm of RFC 8621 4.1.4. A nil list pointer stands for the
// algorithm's null: that list takes no more parts in this branch.
func classify(parts []*bodyPart, multipartType string, inAlternative bool, htmlBody, textBody, attachments *[]*bodyPart) {
	textLength, htmlLength := -1, -1
	if textBody != nil {
		textLength = len(*textBody)
	}
	if htmlBody != nil {
		htmlLength = len(*htmlBody)
	}
	for i, part := range parts {
		typ := part.mediaType()
		isInline := part.p.Disposition != "attachment" &&
			(typ == "text/plain" || typ == "text/html" || isInlineMediaType(typ)) &&
			(i == 0 || (multipartType != "related" && (isInlineMediaType(typ) || part.p.FileName() == "")))
		switch {
		case part.p.Type == "multipart":
			sub := part.p.Subtype
			classify(part.sub, sub, inAlternative || sub == "alternative", htmlBody, textBody, attachments)
		case isInline:
			if multipartType == "alternative" {
				switch typ {
				case "text/plain":
					*textBody = append(*textBody, part)
				case "text/html":
					*htmlBody = append(*htmlBody, part)
				default:
					*attachments = append(*attachments, part)
				}
				continue
			} else if inAlternative {
				if typ == "text/plain" {
					htmlBody = nil
				}
				if typ == "text/html" {
					textBody = nil
				}
			}
			if textBody != nil {
				*textBody = append(*textBody, part)
			}
			if htmlBody != nil {
				*htmlBody = append(*htmlBody, part)
			}
			if (textBody == nil || htmlBody == nil) && isInlineMediaType(typ) {
				*attachments = append(*attachments, part)
			}
		default:
			*attachments = append(*attachments, part)
		}
	}
	if multipartType == "alternative" && textBody != nil && htmlBody != nil {
		// Found an HTML part only: the text body shows it too.
		if textLength == len(*textBody) && htmlLength != len(*htmlBody) {
			*textBody = append(*textBody, (*htmlBody)[htmlLength:]...)
		}
		// Found a plain text part only: the HTML body shows it too.
		if htmlLength == len(*htmlBody) && textLength != len(*textBody) {
			*htmlBody = append(*htmlBody, (*textBody)[textLength:]...)
		}
	}
}

// bodyLists returns textBody, htmlBody and attachments of a structure.
func bodyLists(root *bodyPart) (text, html, attachments []*bodyPart) {
	text, html, attachments = []*bodyPart{}, []*bodyPart{}, []*bodyPart{}
	if root != nil {
		classify([]*bodyPart{root}, "mixed", false, &html, &text, &attachments)
	}
	return text, html, attachments
}

// leaves returns the non-multipart parts in document order.
func (bp *bodyPart) leaves(out []*bodyPart) []*bodyPart {
	if bp.p.Type != "multipart" {
		return append(out, bp)
	}
	for _, s := range bp.sub {
		out = s.leaves(out)
	}
	return out
}

// partProps says what to put into an EmailBodyPart object.
type partProps struct {
	want    map[string]bool
	headers []headerProp
	raw     []byte // the raw message, when headers are asked for
	mid     uint64
}

func (pp *partProps) needRaw() bool { return pp.want["headers"] || len(pp.headers) > 0 }

func parsePartProps(raw *[]string) (*partProps, error) {
	pp := &partProps{want: map[string]bool{}}
	list := defaultBodyProperties
	if raw != nil {
		list = *raw
	}
	for _, p := range list {
		if hp, ok := parseHeaderProp(p); ok {
			pp.headers = append(pp.headers, hp)
			continue
		}
		if !slices.Contains(bodyPartProperties, p) {
			return nil, invalidArguments("unknown body property %q", p)
		}
		pp.want[p] = true
	}
	return pp, nil
}

// object builds the JSON object of a part; subParts are included for the
// bodyStructure tree.
func (pp *partProps) object(bp *bodyPart, tree bool) map[string]any {
	p := bp.p
	m := make(map[string]any, len(pp.want)+1)
	leaf := p.Type != "multipart"
	if pp.want["partId"] {
		m["partId"] = nullIf(!leaf, bp.partID)
	}
	if pp.want["blobId"] {
		m["blobId"] = nullIf(!leaf, partBlobID(pp.mid, bp.partID))
	}
	if pp.want["size"] {
		if leaf {
			m["size"] = p.DecodedSize
		} else {
			m["size"] = p.End - p.BodyStart
		}
	}
	var fields []rawField
	if pp.needRaw() && pp.raw != nil && p.BodyStart <= int64(len(pp.raw)) {
		fields = parseFields(pp.raw[p.HeaderStart:p.BodyStart])
	}
	if pp.want["headers"] {
		hs := make([]map[string]string, len(fields))
		for i, f := range fields {
			hs[i] = map[string]string{"name": f.name, "value": strings.ToValidUTF8(f.value, "\uFFFD")}
		}
		m["headers"] = hs
	}
	for _, hp := range pp.headers {
		m[hp.key] = hp.value(fields)
	}
	if pp.want["name"] {
		m["name"] = nullIf(p.FileName() == "", p.FileName())
	}
	if pp.want["type"] {
		m["type"] = bp.mediaType()
	}
	if pp.want["charset"] {
		cs := p.Params["charset"]
		switch {
		case cs != "":
			m["charset"] = cs
		case p.Type == "text":
			m["charset"] = "us-ascii"
		default:
			m["charset"] = nil
		}
	}
	if pp.want["disposition"] {
		m["disposition"] = nullIf(p.Disposition == "", p.Disposition)
	}
	if pp.want["cid"] {
		cid := strings.TrimSpace(p.ID)
		cid = strings.TrimSuffix(strings.TrimPrefix(cid, "<"), ">")
		m["cid"] = nullIf(cid == "", cid)
	}
	if pp.want["language"] {
		if len(p.Language) == 0 {
			m["language"] = nil
		} else {
			m["language"] = p.Language
		}
	}
	if pp.want["location"] {
		m["location"] = nullIf(p.Location == "", p.Location)
	}
	switch {
	case !leaf && (tree || pp.want["subParts"]):
		subs := make([]any, len(bp.sub))
		for i, s := range bp.sub {
			subs[i] = pp.object(s, tree)
		}
		m["subParts"] = subs
	case pp.want["subParts"]:
		m["subParts"] = nil
	}
	return m
}

func nullIf(null bool, v any) any {
	if null {
		return nil
	}
	return v
}
