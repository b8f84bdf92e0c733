package mailparse

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// summaryFields has Summary's fields without its methods.
type summaryFields Summary

// storedSummary is the stored form: header fields as [name, value] pairs,
// which encode faster than through a MarshalJSON method per field.
type storedSummary struct {
	*summaryFields
	Headers [][2]string `json:"h,omitempty"`
}

// MarshalBinary encodes the Summary for storage, as compact JSON without
// Text (which goes to the full-text index instead).
func (s *Summary) MarshalBinary() ([]byte, error) {
	stored := storedSummary{summaryFields: (*summaryFields)(s)}
	if len(s.Headers) > 0 {
		stored.Headers = make([][2]string, len(s.Headers))
		for i, h := range s.Headers {
			stored.Headers[i] = [2]string{h.Name, h.Value}
		}
	}
	b, err := json.Marshal(stored)
	if err != nil {
		return nil, fmt.Errorf("marshal summary: %w", err)
	}
	return b, nil
}

// UnmarshalBinary decodes a Summary stored by MarshalBinary. Text is empty.
func (s *Summary) UnmarshalBinary(data []byte) error {
	var d Summary
	stored := storedSummary{summaryFields: (*summaryFields)(&d)}
	if err := json.Unmarshal(data, &stored); err != nil {
		return fmt.Errorf("unmarshal summary: %w", err)
	}
	if err := restoreParts(d.Structure); err != nil {
		return fmt.Errorf("unmarshal summary: %w", err)
	}
	if len(stored.Headers) > 0 {
		d.Headers = make([]Header, len(stored.Headers))
		for i, h := range stored.Headers {
			d.Headers[i] = Header{Name: h[0], Value: h[1]}
		}
	}
	*s = d
	return nil
}

// restoreParts recomputes the sizes MarshalBinary leaves out and checks the
// offsets, so that a damaged record cannot make Section slice out of order.
func restoreParts(p *Part) error {
	if p == nil {
		return nil
	}
	if p.HeaderStart < 0 || p.HeaderStart > p.BodyStart || p.BodyStart > p.End {
		return errors.New("part offsets out of order")
	}
	p.Size = p.End - p.BodyStart
	for _, c := range p.Children {
		if err := restoreParts(c); err != nil {
			return err
		}
	}
	return restoreParts(p.Message)
}

// MarshalJSON encodes the address as [name, mailbox, host].
func (a Address) MarshalJSON() ([]byte, error) {
	return json.Marshal([3]string{a.Name, a.Mailbox, a.Host})
}

func (a *Address) UnmarshalJSON(b []byte) error {
	var v [3]string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*a = Address{Name: v[0], Mailbox: v[1], Host: v[2]}
	return nil
}

// envelopeFields has Envelope's fields without its JSON methods.
type envelopeFields Envelope

// MarshalJSON leaves out Sender and ReplyTo when they equal From, as they
// mostly do; UnmarshalJSON restores them.
func (e Envelope) MarshalJSON() ([]byte, error) {
	f := envelopeFields(e)
	if slices.Equal(f.Sender, f.From) {
		f.Sender = nil
	}
	if slices.Equal(f.ReplyTo, f.From) {
		f.ReplyTo = nil
	}
	return json.Marshal(f)
}

func (e *Envelope) UnmarshalJSON(b []byte) error {
	var f envelopeFields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*e = Envelope(f)
	if len(e.Sender) == 0 {
		e.Sender = e.From
	}
	if len(e.ReplyTo) == 0 {
		e.ReplyTo = e.From
	}
	return nil
}
