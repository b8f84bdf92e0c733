package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/server/answer"
)

// API serves /api/v1. Every request carries the provider token as a Bearer
// token; the provider administers tenants, and the only endpoint that
// returns archived mail is the audited export, which admin and compliance
// users of a tenant may also call with HTTP Basic authentication.
type API struct {
	p   *backend.Provider
	log *slog.Logger
	mux *http.ServeMux
	// users serves the endpoints a tenant user may call with HTTP Basic
	// authentication (exports, for admin and compliance users).
	users *http.ServeMux
	// Endpoints reports the protocol endpoints' counters (SMTP journal
	// rate, last message, rejects); nil when none runs.
	Endpoints func() map[string]any
}

// NewAPI returns the management API handler.
func NewAPI(p *backend.Provider, log *slog.Logger) *API {
	a := &API{p: p, log: log, mux: http.NewServeMux(), users: http.NewServeMux()}
	wrap := func(fn func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
		return answer.Handler(a.log, fn)
	}
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request) error) {
		a.mux.HandleFunc(pattern, wrap(fn))
	}
	h("GET /api/v1/tenants/{t}/export", a.export)
	h("GET /api/v1/tenants/{t}/signing", a.signingCert)
	h("POST /api/v1/tenants/{t}/signing/generate", a.signingGenerate)
	h("PUT /api/v1/tenants/{t}/signing", tenantAction(a, func(r *http.Request, t *backend.Tenant, req SigningImport) error {
		return t.ImportSigningKey(r.Context(), []byte(req.Cert), []byte(req.Key))
	}))
	a.users.HandleFunc("GET /api/v1/tenants/{t}/export", wrap(a.export))
	h("GET /api/v1/backup", a.backupStream)
	h("POST /api/v1/tenants/{t}/auditors", a.createAuditor)
	a.users.HandleFunc("POST /api/v1/tenants/{t}/auditors", wrap(a.createAuditor))
	h("GET /api/v1/tenants", a.listTenants)
	h("POST /api/v1/tenants", a.createTenant)
	h("GET /api/v1/tenants/{t}", a.showTenant)
	h("PATCH /api/v1/tenants/{t}", a.patchTenant)
	h("POST /api/v1/tenants/{t}/domains", a.addDomain)
	h("GET /api/v1/tenants/{t}/users", a.listUsers)
	h("POST /api/v1/tenants/{t}/users", a.createUser)
	h("PUT /api/v1/tenants/{t}/users/{login}/password", tenantAction(a, func(r *http.Request, t *backend.Tenant, req struct {
		Password string `json:"password"`
	}) error {
		if err := checkPassword(req.Password); err != nil {
			return err
		}
		return t.SetPassword(r.Context(), r.PathValue("login"), req.Password)
	}))
	h("DELETE /api/v1/tenants/{t}/users/{login}", tenantAction(a, func(r *http.Request, t *backend.Tenant, _ noBody) error {
		return t.DeleteUser(r.Context(), r.PathValue("login"))
	}))
	h("GET /api/v1/tenants/{t}/groups", a.listGroups)
	h("POST /api/v1/tenants/{t}/groups", a.createGroup)
	h("POST /api/v1/tenants/{t}/groups/{g}/members", tenantAction(a, func(r *http.Request, t *backend.Tenant, req struct {
		Login  string `json:"login"`
		Remove bool   `json:"remove,omitempty"`
	}) error {
		return t.SetGroupMember(r.Context(), r.PathValue("g"), req.Login, !req.Remove)
	}))
	h("GET /api/v1/tenants/{t}/mailboxes", a.listMailboxes)
	h("POST /api/v1/tenants/{t}/mailboxes", a.createMailbox)
	h("POST /api/v1/tenants/{t}/mailboxes/{m}/aliases", tenantAction(a, func(r *http.Request, t *backend.Tenant, req struct {
		Alias string `json:"alias"`
	}) error {
		return t.AddAlias(r.Context(), r.PathValue("m"), req.Alias)
	}))
	h("POST /api/v1/tenants/{t}/mailboxes/{m}/grants", tenantAction(a, func(r *http.Request, t *backend.Tenant, req struct {
		Who string `json:"who"`
	}) error {
		return t.Grant(r.Context(), r.PathValue("m"), req.Who)
	}))
	h("DELETE /api/v1/tenants/{t}/mailboxes/{m}/grants/{who}", tenantAction(a, func(r *http.Request, t *backend.Tenant, _ noBody) error {
		return t.Revoke(r.Context(), r.PathValue("m"), r.PathValue("who"))
	}))
	h("POST /api/v1/tenants/{t}/messages", a.ingestOne)
	h("POST /api/v1/tenants/{t}/import", a.importBatch)
	h("GET /api/v1/tenants/{t}/stats", a.tenantStats)
	h("POST /api/v1/tenants/{t}/verify", a.verify)
	h("POST /api/v1/tenants/{t}/reindex", a.reindex)
	h("POST /api/v1/tenants/{t}/reparse", a.reparse)
	h("GET /api/v1/tenants/{t}/audit", a.audit)
	h("GET /api/v1/stats", a.allStats)
	a.tenantEndOfLife(h)
	a.retentionRoutes(func(pattern string, fn func(w http.ResponseWriter, r *http.Request) error) {
		h(pattern, fn)
		a.users.HandleFunc(pattern, wrap(fn))
	})
	h("GET /api/v1/tenants/{t}/journal", a.journalAccess)
	h("POST /api/v1/tenants/{t}/journal/networks", tenantAction(a, func(r *http.Request, t *backend.Tenant, req struct {
		Network string `json:"network"`
	}) error {
		if err := t.AllowJournalNetwork(r.Context(), req.Network); err != nil {
			return fmt.Errorf("%w: %v", answer.ErrBadRequest, err)
		}
		return nil
	}))
	h("DELETE /api/v1/tenants/{t}/journal/networks/{net...}", tenantAction(a, func(r *http.Request, t *backend.Tenant, _ noBody) error {
		return t.DisallowJournalNetwork(r.Context(), r.PathValue("net"))
	}))
	h("PUT /api/v1/tenants/{t}/journal/credentials/{login}", tenantAction(a, func(r *http.Request, t *backend.Tenant, req struct {
		Password string `json:"password"`
	}) error {
		return t.SetJournalCredential(r.Context(), r.PathValue("login"), req.Password)
	}))
	h("DELETE /api/v1/tenants/{t}/journal/credentials/{login}", tenantAction(a, func(r *http.Request, t *backend.Tenant, _ noBody) error {
		return t.DeleteJournalCredential(r.Context(), r.PathValue("login"))
	}))
	return a
}

// noBody marks a request without a JSON body.
type noBody struct{}

// tenantAction decodes the JSON body into a Req (unless it is noBody), runs
// fn on the request's tenant and answers 204 No Content.
func tenantAction[Req any](a *API, fn func(r *http.Request, t *backend.Tenant, req Req) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req Req
		if _, none := any(req).(noBody); !none {
			if err := decode(r, &req); err != nil {
				return err
			}
		}
		t, err := a.tenant(r)
		if err != nil {
			return err
		}
		if err := fn(r, t, req); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if login, password, ok := r.BasicAuth(); ok {
		a.serveUser(w, r, login, password)
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !a.p.CheckProviderToken(strings.TrimSpace(tok)) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mailvault management"`)
		answer.JSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong provider token (see provider.token in the data directory)"})
		return
	}
	a.mux.ServeHTTP(w, r.WithContext(backend.WithActor(r.Context(), requestActor(r))))
}

type apiUserKey struct{}

// apiUser is a tenant user authenticated by HTTP Basic authentication.
type apiUser struct {
	tenant, login string
}

// serveUser serves a request of a tenant user: only the endpoints in
// a.users, only for the user's own tenant, audited as the user's login.
func (a *API) serveUser(w http.ResponseWriter, r *http.Request, login, password string) {
	t, u, err := a.p.Login(r.Context(), login, password)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="mailvault"`)
		answer.JSON(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
		return
	}
	if _, pattern := a.users.Handler(r); pattern == "" {
		answer.JSON(w, http.StatusForbidden, map[string]string{"error": "this endpoint needs the provider token"})
		return
	}
	ctx := context.WithValue(backend.WithActor(r.Context(), u.Login), apiUserKey{}, apiUser{t.Name, u.Login})
	a.users.ServeHTTP(w, r.WithContext(ctx))
}

// OperatorHeader names who runs an administration command (the CLI sends
// the OS user and host). It is not authenticated (the token is), so it is
// recorded apart from logins: the actor becomes "cli:<operator>".
const OperatorHeader = "X-Mailvault-Operator"

// requestActor is who a request's changes are audited as.
func requestActor(r *http.Request) string {
	op := strings.Map(func(c rune) rune {
		if c < 0x21 || c > 0x7e {
			return -1
		}
		return c
	}, r.Header.Get(OperatorHeader))
	if op == "" {
		return "provider"
	}
	if len(op) > 100 {
		op = op[:100]
	}
	return "cli:" + op
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %v", answer.ErrBadRequest, err)
	}
	return nil
}

func (a *API) tenant(r *http.Request) (*backend.Tenant, error) {
	return a.p.Tenant(r.Context(), r.PathValue("t"))
}

func (a *API) listTenants(w http.ResponseWriter, r *http.Request) error {
	ts, err := a.p.Tenants()
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, t := range ts {
		out = append(out, tenantJSON(t))
	}
	answer.JSON(w, 200, out)
	return nil
}

func tenantJSON(t *backend.TenantInfo) map[string]any {
	out := map[string]any{"name": t.Name, "domains": t.Domains, "quotas": t.Quotas, "created": t.Created, "auto_mailboxes": t.AutoMailboxes}
	if t.DeleteAfter != nil {
		out["delete_after"], out["delete_by"] = t.DeleteAfter, t.DeleteBy
	}
	return out
}

// TenantRequest creates a tenant.
type TenantRequest struct {
	Name    string         `json:"name"`
	Domains []string       `json:"domains,omitempty"`
	Quotas  backend.Quotas `json:"quotas,omitempty"`
}

func (a *API) createTenant(w http.ResponseWriter, r *http.Request) error {
	var req TenantRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	info, err := a.p.CreateTenant(r.Context(), req.Name, req.Domains, req.Quotas)
	if err != nil {
		return err
	}
	if t, err := a.p.Tenant(r.Context(), info.Name); err == nil {
		t.Audit(r.Context(), backend.ActorOf(r.Context()), "tenant-create", fmt.Sprintf("%s domains %v quotas %+v", info.Name, info.Domains, info.Quotas))
	}
	answer.JSON(w, http.StatusCreated, tenantJSON(info))
	return nil
}

func (a *API) showTenant(w http.ResponseWriter, r *http.Request) error {
	info, err := a.p.TenantInfo(r.PathValue("t"))
	if err != nil {
		return err
	}
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	out := tenantJSON(info)
	out["stats"] = t.Stats()
	answer.JSON(w, 200, out)
	return nil
}

// TenantPatch changes tenant options.
type TenantPatch struct {
	Quotas        *backend.Quotas `json:"quotas,omitempty"`
	AutoMailboxes *bool           `json:"auto_mailboxes,omitempty"`
}

func (a *API) patchTenant(w http.ResponseWriter, r *http.Request) error {
	var req TenantPatch
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := a.p.SetTenantOptions(r.Context(), r.PathValue("t"), req.Quotas, req.AutoMailboxes); err != nil {
		return err
	}
	if t, err := a.tenant(r); err == nil {
		var detail []string
		if req.Quotas != nil {
			detail = append(detail, fmt.Sprintf("quotas %+v", *req.Quotas))
		}
		if req.AutoMailboxes != nil {
			detail = append(detail, fmt.Sprintf("auto_mailboxes %v", *req.AutoMailboxes))
		}
		t.Audit(r.Context(), backend.ActorOf(r.Context()), "tenant-set", strings.Join(detail, " "))
	}
	return a.showTenant(w, r)
}

func (a *API) addDomain(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Domain string `json:"domain"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := a.p.AddDomain(r.Context(), r.PathValue("t"), req.Domain); err != nil {
		return err
	}
	if t, err := a.tenant(r); err == nil {
		t.Audit(r.Context(), backend.ActorOf(r.Context()), "domain-add", req.Domain)
	}
	answer.JSON(w, http.StatusCreated, map[string]string{"domain": req.Domain})
	return nil
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	answer.JSON(w, 200, t.Users())
	return nil
}

// UserRequest creates a user.
type UserRequest struct {
	Login     string   `json:"login"`
	Password  string   `json:"password,omitempty"`
	Roles     []string `json:"roles,omitempty"`
	NoMailbox bool     `json:"no_mailbox,omitempty"`
	Aliases   []string `json:"aliases,omitempty"`
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) error {
	var req UserRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	roles, err := parseRoles(req.Roles)
	if err != nil {
		return err
	}
	if err := checkPassword(req.Password); err != nil {
		return err
	}
	u, err := t.CreateUser(r.Context(), backend.UserSpec{Login: req.Login, Password: req.Password, Roles: roles, Mailbox: !req.NoMailbox, Aliases: req.Aliases})
	if err != nil {
		return err
	}
	answer.JSON(w, http.StatusCreated, map[string]any{"login": u.Login, "roles": u.Roles})
	return nil
}

// MinPasswordLength is the shortest password an administrator may set for
// a local user.
const MinPasswordLength = backend.MinPasswordLength

func checkPassword(pw string) error {
	return backend.CheckNewPassword(pw)
}

func parseRoles(in []string) ([]backend.Role, error) {
	var out []backend.Role
	for _, s := range in {
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part == "" {
				continue
			}
			r, err := backend.ParseRole(part)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", answer.ErrBadRequest, err)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func (a *API) listGroups(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	answer.JSON(w, 200, t.Groups())
	return nil
}

func (a *API) createGroup(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name  string   `json:"name"`
		Roles []string `json:"roles,omitempty"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	roles, err := parseRoles(req.Roles)
	if err != nil {
		return err
	}
	if err := t.CreateGroup(r.Context(), req.Name, roles); err != nil {
		return err
	}
	answer.JSON(w, http.StatusCreated, map[string]any{"name": req.Name, "roles": roles})
	return nil
}

func (a *API) listMailboxes(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	answer.JSON(w, 200, t.Mailboxes())
	return nil
}

// MailboxRequest creates an archive mailbox.
type MailboxRequest struct {
	Address string   `json:"address"`
	Kind    string   `json:"kind,omitempty"`
	Aliases []string `json:"aliases,omitempty"`
	Owner   string   `json:"owner,omitempty"`
}

func (a *API) createMailbox(w http.ResponseWriter, r *http.Request) error {
	var req MailboxRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	mb, err := t.CreateMailbox(r.Context(), backend.MailboxSpec{Kind: backend.MailboxKind(req.Kind), Address: req.Address, Aliases: req.Aliases, Owner: req.Owner})
	if err != nil {
		return err
	}
	// Audited here, not in CreateMailbox: ingest creates mailboxes for
	// new addresses too, and those are no administrative change.
	t.Audit(r.Context(), backend.ActorOf(r.Context()), "mailbox-create", fmt.Sprintf("%s kind %s aliases %v owner %q", mb.Address, mb.Kind, mb.Aliases, mb.Owner))
	answer.JSON(w, http.StatusCreated, mb)
	return nil
}

func sourceFromQuery(q url.Values) (backend.Source, error) {
	src := backend.Source{Mailbox: q.Get("mailbox"), Folder: q.Get("folder"), Sender: q.Get("sender"), Journal: q.Get("journal") == "1"}
	if rc := q.Get("recipients"); rc != "" {
		src.Recipients = strings.Split(rc, ",")
	}
	if d := q.Get("date"); d != "" {
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil {
			return src, fmt.Errorf("%w: date must be unix seconds", answer.ErrBadRequest)
		}
		src.Received = time.Unix(n, 0)
	}
	return src, nil
}

// ingestOne archives one raw message (the request body).
func (a *API) ingestOne(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	src, err := sourceFromQuery(r.URL.Query())
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 512<<20))
	if err != nil {
		return fmt.Errorf("%w: read message: %v", answer.ErrBadRequest, err)
	}
	res, err := t.Ingest(r.Context(), raw, src)
	if err != nil {
		return err
	}
	answer.JSON(w, http.StatusCreated, res)
	return nil
}

// ImportResult is one line of the import response stream.
type ImportResult struct {
	N int `json:"n"`
	backend.IngestResult
	// Unmatched: assigned by address, the message matched no archive
	// mailbox and is kept in the journal mailbox only.
	Unmatched bool   `json:"unmatched,omitempty"`
	Error     string `json:"error,omitempty"`
}

// checkImportMailbox checks an import's target mailbox up front, so that a
// misspelt address fails once instead of once per message.
func checkImportMailbox(t *backend.Tenant, target string) error {
	if target == "" {
		return nil
	}
	want, err := backend.NormalizeAddress(target)
	if err != nil {
		return fmt.Errorf("%w: mailbox: %v", answer.ErrBadRequest, err)
	}
	for _, mb := range t.Mailboxes() {
		if slices.Contains(mb.Addresses(), want) {
			return nil
		}
	}
	return fmt.Errorf("archive mailbox %s: %w (see `mailvault mailbox list`)", want, backend.ErrNotFound)
}

// importBatch archives a stream of messages in the batch format written by
// WriteBatchRecord and answers one JSON line per message, in order, as each
// becomes durable, so a client knows exactly what is done even if the
// connection breaks.
func (a *API) importBatch(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	base, err := sourceFromQuery(r.URL.Query())
	if err != nil {
		return err
	}
	base.Intake = backend.IntakeImport
	if err := checkImportMailbox(t, base.Mailbox); err != nil {
		return err
	}
	// Results stream back while the request is still being read.
	if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
		return fmt.Errorf("import needs a full-duplex connection: %w", err)
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)

	type slot struct {
		res  chan ImportResult
		n    int
		size int
	}
	const workers = 64
	sem := make(chan struct{}, workers)
	order := make(chan slot, 64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for s := range order {
			res := <-s.res
			enc.Encode(res)
			if flusher != nil && len(order) == 0 {
				flusher.Flush()
			}
		}
	}()
	br := bufio.NewReaderSize(r.Body, 256<<10)
	// Messages are ingested concurrently but committed in stream order,
	// so a folder's UIDs follow its source.
	turns := backend.NewTurns()
	var readErr error
	for n := 1; ; n++ {
		rec, err := ReadBatchRecord(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		src := base
		if rec.Folder != "" {
			src.Folder = rec.Folder
		}
		if !rec.Date.IsZero() {
			src.Received = rec.Date
		}
		s := slot{res: make(chan ImportResult, 1), n: n}
		order <- s
		sem <- struct{}{}
		turn := turns.Next()
		go func(raw []byte) {
			defer func() { <-sem }()
			res, err := t.IngestInTurn(r.Context(), raw, src, turn)
			ir := ImportResult{N: s.n, IngestResult: res}
			if err != nil {
				ir.Error = err.Error()
			}
			if src.Mailbox == "" && !src.Journal && len(res.Placed) > 0 {
				ir.Unmatched = true
				for _, pl := range res.Placed {
					ir.Unmatched = ir.Unmatched && t.IsJournalAddress(pl.Mailbox)
				}
			}
			s.res <- ir
		}(rec.Raw)
	}
	close(order)
	wg.Wait()
	if readErr != nil {
		enc.Encode(ImportResult{Error: "request: " + readErr.Error()})
		a.log.Warn("import stream ended with an error", "tenant", t.Name, "err", readErr)
	}
	return nil
}

// BatchRecord is one message in an import stream.
type BatchRecord struct {
	Folder string
	Date   time.Time
	Raw    []byte
}

// Batch stream format, one record per message:
//
//	MV1 <length> <"f:" + folder URL-escaped, or -> <unix seconds or 0>\n<length bytes>\n
const batchMagic = "MV1"

// WriteBatchRecord writes one record of an import stream.
func WriteBatchRecord(w io.Writer, rec BatchRecord) error {
	folder := "-"
	if rec.Folder != "" {
		folder = "f:" + url.PathEscape(rec.Folder)
	}
	var date int64
	if !rec.Date.IsZero() {
		date = rec.Date.Unix()
	}
	if _, err := fmt.Fprintf(w, "%s %d %s %d\n", batchMagic, len(rec.Raw), folder, date); err != nil {
		return err
	}
	if _, err := w.Write(rec.Raw); err != nil {
		return err
	}
	_, err := w.Write([]byte{'\n'})
	return err
}

// ReadBatchRecord reads one record; io.EOF at a clean end.
func ReadBatchRecord(br *bufio.Reader) (BatchRecord, error) {
	var rec BatchRecord
	line, err := br.ReadString('\n')
	if err == io.EOF && line == "" {
		return rec, io.EOF
	}
	if err != nil {
		return rec, fmt.Errorf("read record header: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != batchMagic {
		return rec, fmt.Errorf("bad record header %q", strings.TrimSpace(line))
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 0 || n > 512<<20 {
		return rec, fmt.Errorf("bad record length %q", f[1])
	}
	if f[2] != "-" {
		esc, ok := strings.CutPrefix(f[2], "f:")
		if rec.Folder, err = url.PathUnescape(esc); err != nil || !ok {
			return rec, fmt.Errorf("bad folder %q", f[2])
		}
	}
	if d, err := strconv.ParseInt(f[3], 10, 64); err == nil && d != 0 {
		rec.Date = time.Unix(d, 0)
	}
	rec.Raw = make([]byte, n+1)
	if _, err := io.ReadFull(br, rec.Raw); err != nil {
		return rec, fmt.Errorf("read message of %d bytes: %w", n, err)
	}
	if rec.Raw[n] != '\n' {
		return rec, fmt.Errorf("record not terminated")
	}
	rec.Raw = rec.Raw[:n]
	return rec, nil
}

func (a *API) tenantStats(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	answer.JSON(w, 200, t.Stats())
	return nil
}

// AllStats is the answer of GET /api/v1/stats.
type AllStats struct {
	Tenants   []backend.Stats `json:"tenants"`
	Endpoints map[string]any  `json:"endpoints,omitempty"`
}

func (a *API) allStats(w http.ResponseWriter, r *http.Request) error {
	ts, err := a.p.Tenants()
	if err != nil {
		return err
	}
	out := AllStats{Tenants: []backend.Stats{}}
	for _, info := range ts {
		t, err := a.p.Tenant(r.Context(), info.Name)
		if err != nil {
			return err
		}
		out.Tenants = append(out.Tenants, t.Stats())
	}
	if a.Endpoints != nil {
		out.Endpoints = a.Endpoints()
	}
	answer.JSON(w, 200, out)
	return nil
}

func (a *API) journalAccess(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	acc, err := t.JournalAccess()
	if err != nil {
		return err
	}
	answer.JSON(w, 200, acc)
	return nil
}

func (a *API) verify(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	rep, err := t.Verify(r.Context(), nil)
	if err != nil {
		return err
	}
	bad, err := t.VerifyAudit()
	if err != nil {
		return err
	}
	answer.JSON(w, 200, map[string]any{"report": rep, "clean": rep.Clean() && len(bad) == 0, "audit_broken": bad})
	return nil
}

func (a *API) reindex(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	n := t.Reindex(context.WithoutCancel(r.Context()))
	answer.JSON(w, http.StatusAccepted, map[string]int{"queued": n})
	return nil
}

// reparse starts deriving again the summaries an older parser wrote (it
// runs at every open; this retries messages that could not be read).
func (a *API) reparse(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	answer.JSON(w, http.StatusAccepted, map[string]int{"outdated": t.Reparse()})
	return nil
}

func (a *API) audit(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var after uint64
	if s := q.Get("after"); s != "" {
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			return fmt.Errorf("%w: after must be a sequence number", answer.ErrBadRequest)
		}
	}
	limit := AuditPageSize
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > AuditPageSize {
			return fmt.Errorf("%w: limit must be 1 to %d", answer.ErrBadRequest, AuditPageSize)
		}
	}
	entries, err := t.AuditLog(after, limit)
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []backend.AuditEntry{}
	}
	answer.JSON(w, 200, entries)
	return nil
}

// AuditPageSize is the most audit entries one GET .../audit returns; the
// next page starts after the last entry's seq, and an empty page is the end.
const AuditPageSize = 1000
