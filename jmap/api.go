package jmap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mailvault/mailvault/backend"
)

// RFC 8620 request-level error types.
const (
	errUnknownCapability = "urn:ietf:params:jmap:error:unknownCapability"
	errNotJSON           = "urn:ietf:params:jmap:error:notJSON"
	errNotRequest        = "urn:ietf:params:jmap:error:notRequest"
	errLimit             = "urn:ietf:params:jmap:error:limit"
)

// methodError is a method-level error (RFC 8620 3.6.2).
type methodError struct {
	Type        string   `json:"type"`
	Description string   `json:"description,omitempty"`
	Properties  []string `json:"properties,omitempty"`
}

func (e *methodError) Error() string { return e.Type + ": " + e.Description }

func invalidArguments(format string, args ...any) *methodError {
	return &methodError{Type: "invalidArguments", Description: fmt.Sprintf(format, args...)}
}

var (
	errForbiddenWrite  = &methodError{Type: "forbidden", Description: "The archive is read-only: only keywords can be changed."}
	errAccountNotFound = &methodError{Type: "accountNotFound"}
)

// invocation is a method call or response: [name, arguments, call id].
type invocation struct {
	name   string
	args   json.RawMessage
	callID string
}

func (i invocation) MarshalJSON() ([]byte, error) {
	return json.Marshal([3]any{i.name, i.args, i.callID})
}

// method answers one call; a *methodError becomes an "error" response,
// any other error serverFail.
type method func(rq *request, args json.RawMessage) (any, error)

type methodEntry struct {
	capability string
	fn         method
}

// methods is the dispatch table; it is read-only after init.
var methods = map[string]methodEntry{
	"Core/echo":            {capCore, func(_ *request, args json.RawMessage) (any, error) { return args, nil }},
	"Mailbox/get":          {capMail, (*request).mailboxGet},
	"Mailbox/query":        {capMail, (*request).mailboxQuery},
	"Mailbox/changes":      {capMail, (*request).mailboxChanges},
	"Mailbox/queryChanges": {capMail, (*request).cannotCalculateChanges},
	"Mailbox/set":          {capMail, (*request).forbidden},
	"Thread/get":           {capMail, (*request).threadGet},
	"Thread/changes":       {capMail, (*request).threadChanges},
	"Email/get":            {capMail, (*request).emailGet},
	"Email/query":          {capMail, (*request).emailQuery},
	"Email/changes":        {capMail, (*request).emailChanges},
	"Email/queryChanges":   {capMail, (*request).emailQueryChanges},
	"Email/set":            {capMail, (*request).emailSet},
	"Email/copy":           {capMail, (*request).forbidden},
	"Email/import":         {capMail, (*request).forbidden},
	"SearchSnippet/get":    {capMail, (*request).searchSnippetGet},
	"Retention/get":        {capRetention, (*request).retentionGet},
}

// request is one API request of one user.
type request struct {
	h         *Handler
	ctx       context.Context
	u         *user
	using     map[string]bool
	responses []invocation
	decoded   map[int]any // responses decoded for result references
	readable  []backend.MailboxView
}

func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request, u *user) {
	release, ok := h.acquire(u.key())
	if !ok {
		problemLimit(w, http.StatusTooManyRequests, errLimit, "Too many concurrent requests.", "maxConcurrentRequests")
		return
	}
	defer release()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSizeRequest))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			problemLimit(w, http.StatusRequestEntityTooLarge, errLimit, "The request is larger than maxSizeRequest.", "maxSizeRequest")
			return
		}
		problem(w, http.StatusBadRequest, errNotJSON, "cannot read the request body")
		return
	}
	if !utf8.Valid(body) || !json.Valid(body) {
		problem(w, http.StatusBadRequest, errNotJSON, "The request body is not valid JSON in UTF-8.")
		return
	}
	req, detail := decodeRequest(body)
	if detail != "" {
		problem(w, http.StatusBadRequest, errNotRequest, detail)
		return
	}
	rq := &request{h: h, ctx: r.Context(), u: u, using: map[string]bool{}}
	for _, c := range req.Using {
		if c != capCore && c != capMail && c != capRetention {
			problem(w, http.StatusBadRequest, errUnknownCapability, fmt.Sprintf("The server does not support the capability %q.", c))
			return
		}
		rq.using[c] = true
	}
	if len(req.Calls) > maxCallsInRequest {
		problemLimit(w, http.StatusBadRequest, errLimit, fmt.Sprintf("At most %d method calls per request.", maxCallsInRequest), "maxCallsInRequest")
		return
	}
	for _, c := range req.Calls {
		rq.call(c)
	}
	resp := struct {
		MethodResponses []invocation       `json:"methodResponses"`
		CreatedIDs      *map[string]string `json:"createdIds,omitempty"`
		SessionState    string             `json:"sessionState"`
	}{rq.responses, req.CreatedIDs, sessionState(u.login, rq.accounts())}
	if resp.MethodResponses == nil {
		resp.MethodResponses = []invocation{}
	}
	writeJSON(w, http.StatusOK, &resp)
}

type apiRequest struct {
	Using      []string
	Calls      []invocation
	CreatedIDs *map[string]string // echoed when given, even empty
}

// decodeRequest checks the shape of a Request object (RFC 8620 3.3); a
// non-empty detail says what is wrong. go-jmap's Request cannot be used:
// it decodes arguments as method responses.
func decodeRequest(body []byte) (apiRequest, string) {
	var raw struct {
		Using       *[]string          `json:"using"`
		MethodCalls *[]json.RawMessage `json:"methodCalls"`
		CreatedIDs  *map[string]string `json:"createdIds"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return apiRequest{}, "The body is not a JMAP Request object: " + err.Error()
	}
	if raw.Using == nil || raw.MethodCalls == nil {
		return apiRequest{}, `A Request needs "using" and "methodCalls".`
	}
	req := apiRequest{Using: *raw.Using, CreatedIDs: raw.CreatedIDs}
	for i, c := range *raw.MethodCalls {
		var parts []json.RawMessage
		if err := json.Unmarshal(c, &parts); err != nil || len(parts) != 3 {
			return apiRequest{}, fmt.Sprintf("methodCalls[%d] is not an array [name, arguments, call id].", i)
		}
		var inv invocation
		if json.Unmarshal(parts[0], &inv.name) != nil || json.Unmarshal(parts[2], &inv.callID) != nil {
			return apiRequest{}, fmt.Sprintf("methodCalls[%d]: the name and the call id must be strings.", i)
		}
		if t := bytes.TrimSpace(parts[1]); len(t) == 0 || t[0] != '{' {
			return apiRequest{}, fmt.Sprintf("methodCalls[%d]: the arguments must be an object.", i)
		}
		inv.args = parts[1]
		req.Calls = append(req.Calls, inv)
	}
	return req, ""
}

// call runs one method call and appends its response.
func (rq *request) call(c invocation) {
	defer rq.h.methodDone(c.name, time.Now())
	m, ok := methods[c.name]
	if !ok || !rq.using[m.capability] {
		rq.fail(c.callID, &methodError{Type: "unknownMethod", Description: fmt.Sprintf("Unknown method %q, or its capability is not in \"using\".", c.name)})
		return
	}
	args, merr := rq.resolveReferences(c.args)
	if merr != nil {
		rq.fail(c.callID, merr)
		return
	}
	res, err := m.fn(rq, args)
	if err != nil {
		var me *methodError
		if !errors.As(err, &me) {
			rq.h.log.Error("jmap method failed", "method", c.name, "user", rq.u.key(), "err", err)
			me = &methodError{Type: "serverFail", Description: "The archive could not answer; the error is logged."}
		}
		rq.fail(c.callID, me)
		return
	}
	b, err := json.Marshal(res)
	if err != nil {
		rq.h.log.Error("jmap encode response", "method", c.name, "err", err)
		rq.fail(c.callID, &methodError{Type: "serverFail"})
		return
	}
	rq.responses = append(rq.responses, invocation{name: c.name, args: b, callID: c.callID})
}

func (rq *request) fail(callID string, e *methodError) {
	b, _ := json.Marshal(e)
	rq.responses = append(rq.responses, invocation{name: "error", args: b, callID: callID})
}

// resolveReferences replaces every "#name" argument by the value its
// ResultReference points to (RFC 8620 3.7).
func (rq *request) resolveReferences(args json.RawMessage) (json.RawMessage, *methodError) {
	if !bytes.Contains(args, []byte(`"#`)) {
		return args, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(args, &m); err != nil {
		return nil, invalidArguments("the arguments are not an object")
	}
	changed := false
	for k, v := range m {
		name, isRef := strings.CutPrefix(k, "#")
		if !isRef {
			continue
		}
		if _, both := m[name]; both {
			return nil, invalidArguments("both %q and %q are given", name, k)
		}
		var ref struct {
			ResultOf *string `json:"resultOf"`
			Name     *string `json:"name"`
			Path     *string `json:"path"`
		}
		if err := json.Unmarshal(v, &ref); err != nil || ref.ResultOf == nil || ref.Name == nil || ref.Path == nil {
			return nil, &methodError{Type: "invalidResultReference", Description: fmt.Sprintf("%q is not a ResultReference", k)}
		}
		val, ok := rq.reference(*ref.ResultOf, *ref.Name, *ref.Path)
		if !ok {
			return nil, &methodError{Type: "invalidResultReference", Description: fmt.Sprintf("%q: no %s response %q with path %q", k, *ref.Name, *ref.ResultOf, *ref.Path)}
		}
		b, err := json.Marshal(val)
		if err != nil {
			return nil, &methodError{Type: "invalidResultReference", Description: err.Error()}
		}
		delete(m, k)
		m[name] = b
		changed = true
	}
	if !changed {
		return args, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, invalidArguments("%v", err)
	}
	return b, nil
}

// reference evaluates a result reference against the earlier responses.
func (rq *request) reference(callID, name, path string) (any, bool) {
	for i, r := range rq.responses {
		if r.callID != callID || r.name != name {
			continue
		}
		if rq.decoded == nil {
			rq.decoded = map[int]any{}
		}
		v, ok := rq.decoded[i]
		if !ok {
			if json.Unmarshal(r.args, &v) != nil {
				return nil, false
			}
			rq.decoded[i] = v
		}
		return evalPointer(v, path)
	}
	return nil, false
}

// evalPointer evaluates a JSON Pointer (RFC 6901) with JMAP's "*": applied
// to an array it maps the rest of the path over the items and flattens
// arrays among the results.
func evalPointer(v any, path string) (any, bool) {
	if path == "" {
		return v, true
	}
	if path[0] != '/' {
		return nil, false
	}
	return evalTokens(v, strings.Split(path[1:], "/"))
}

func evalTokens(v any, tokens []string) (any, bool) {
	if len(tokens) == 0 {
		return v, true
	}
	tok := strings.ReplaceAll(strings.ReplaceAll(tokens[0], "~1", "/"), "~0", "~")
	switch x := v.(type) {
	case map[string]any:
		child, ok := x[tok]
		if !ok {
			return nil, false
		}
		return evalTokens(child, tokens[1:])
	case []any:
		if tok == "*" {
			out := []any{}
			for _, item := range x {
				r, ok := evalTokens(item, tokens[1:])
				if !ok {
					return nil, false
				}
				if list, isList := r.([]any); isList {
					out = append(out, list...)
				} else {
					out = append(out, r)
				}
			}
			return out, true
		}
		i, err := strconv.Atoi(tok)
		if err != nil || i < 0 || i >= len(x) || !isDigits(tok) {
			return nil, false
		}
		return evalTokens(x[i], tokens[1:])
	}
	return nil, false
}

// decodeArgs decodes method arguments strictly: unknown arguments are
// invalidArguments, as RFC 8620 3.6.2 asks.
func decodeArgs(args json.RawMessage, v any) error {
	d := json.NewDecoder(bytes.NewReader(args))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return invalidArguments("%v", err)
	}
	return nil
}

// accounts returns the archive mailboxes the user may read, once per request.
func (rq *request) accounts() []backend.MailboxView {
	if rq.readable == nil {
		rq.readable = rq.u.t.Readable(rq.u.login)
		if rq.readable == nil {
			rq.readable = []backend.MailboxView{}
		}
	}
	return rq.readable
}

// account finds an account the user may read.
func (rq *request) account(id string) (backend.MailboxView, error) {
	n, ok := parseID('A', id)
	if ok {
		for _, mb := range rq.accounts() {
			if mb.ID == n {
				return mb, nil
			}
		}
	}
	return backend.MailboxView{}, errAccountNotFound
}

func (rq *request) forbidden(args json.RawMessage) (any, error) {
	var a struct {
		AccountID string `json:"accountId"`
	}
	if err := json.Unmarshal(args, &a); err != nil {
		return nil, invalidArguments("%v", err)
	}
	if _, err := rq.account(a.AccountID); err != nil {
		return nil, err
	}
	return nil, errForbiddenWrite
}

func (rq *request) cannotCalculateChanges(args json.RawMessage) (any, error) {
	var a struct {
		AccountID string `json:"accountId"`
	}
	if err := json.Unmarshal(args, &a); err != nil {
		return nil, invalidArguments("%v", err)
	}
	if _, err := rq.account(a.AccountID); err != nil {
		return nil, err
	}
	return nil, &methodError{Type: "cannotCalculateChanges"}
}

// backendError maps a backend error to a method error: a mailbox or folder
// the user may not read does not exist for them.
func backendError(err error) error {
	if errors.Is(err, backend.ErrNotFound) {
		return errAccountNotFound
	}
	return err
}
