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

// MarshalJSON encodes the address as [name, mailbox, host] (with a fourth
// element, the route, if it has one), a group start as [name] and a group
// end as [].
func (a Address) MarshalJSON() ([]byte, error) {
	switch {
	case a.Group == GroupStart:
		return json.Marshal([1]string{a.Name})
	case a.Group == GroupEnd:
		return []byte("[]"), nil
	case a.Route != "":
		return json.Marshal([4]string{a.Name, a.Mailbox, a.Host, a.Route})
	}
	return json.Marshal([3]string{a.Name, a.Mailbox, a.Host})
}

func (a *Address) UnmarshalJSON(b []byte) error {
	var buf [4]string
	v := buf[:0]
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch len(v) {
	case 0:
		*a = Address{Group: GroupEnd}
	case 1:
		*a = Address{Name: v[0], Group: GroupStart}
	case 3:
		*a = Address{Name: v[0], Mailbox: v[1], Host: v[2]}
	case 4:
		*a = Address{Name: v[0], Mailbox: v[1], Host: v[2], Route: v[3]}
	default:
		return fmt.Errorf("address of %d elements", len(v))
	}
	return nil
}

// envelopeFields has Envelope's fields without its JSON methods.
type envelopeFields Envelope

// storedEnvelope writes Sender and ReplyTo only when they differ from From;
// an empty list (the field is there but names nobody) is written as [].
type storedEnvelope struct {
	envelopeFields
	Sender  *[]Address `json:"se,omitempty"`
	ReplyTo *[]Address `json:"rt,omitempty"`
}

// MarshalJSON leaves out Sender and ReplyTo when they equal From, as they
// mostly do; UnmarshalJSON restores them.
func (e Envelope) MarshalJSON() ([]byte, error) {
	st := storedEnvelope{envelopeFields: envelopeFields(e)}
	if e.Sender != nil && !slices.Equal(e.Sender, e.From) {
		st.Sender = &e.Sender
	}
	if e.ReplyTo != nil && !slices.Equal(e.ReplyTo, e.From) {
		st.ReplyTo = &e.ReplyTo
	}
	return json.Marshal(st)
}

func (e *Envelope) UnmarshalJSON(b []byte) error {
	var f envelopeFields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*e = Envelope(f)
	if e.Sender == nil {
		e.Sender = e.From
	}
	if e.ReplyTo == nil {
		e.ReplyTo = e.From
	}
	return nil
}
