package backend

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/index"
)

// Retention policies decide how long each placement of a message (the
// message in one folder of one archive mailbox) must be kept and when it
// may or must go. They are ordered; the first that matches a placement
// applies. A placement no policy matches keeps the default: 10 years from
// the end of the year of the message date, no automatic deletion.

// Period is a retention period: years, months and days counted from the
// message date (the INTERNALDATE: the Date of imported mail, the arrival
// of journaled mail) or from the archive date, optionally from the end of
// that calendar year, as GoBD periods are.
type Period struct {
	Years     int    `json:"years,omitempty"`
	Months    int    `json:"months,omitempty"`
	Days      int    `json:"days,omitempty"`
	From      string `json:"from,omitempty"` // "message" (default) or "archived"
	EndOfYear bool   `json:"end_of_year,omitempty"`
}

// Period bases.
const (
	FromMessage  = "message"
	FromArchived = "archived"
)

// until is the end of the period for a placement with these dates.
func (p *Period) until(received, archived int64) time.Time {
	base := time.Unix(received, 0).UTC()
	if p.From == FromArchived {
		base = time.Unix(0, archived).UTC()
	}
	if p.EndOfYear {
		base = time.Date(base.Year()+1, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return base.AddDate(p.Years, p.Months, p.Days)
}

func (p *Period) String() string {
	s := fmt.Sprintf("%dy%dm%dd from %s", p.Years, p.Months, p.Days, cmp.Or(p.From, FromMessage))
	if p.EndOfYear {
		s += " (end of year)"
	}
	return s
}

// Actions after the maximum retention.
const (
	ActionDelete = "delete" // the retention job deletes the placement
	ActionReview = "review" // the retention job lists it for a compliance user
)

// Policy is one retention rule. Its conditions are ANDed; a list matches
// if any of its entries does; a policy without conditions matches
// everything.
type Policy struct {
	Name string `json:"name"`
	// Mailboxes are addresses of archive mailboxes; Kinds their kinds.
	Mailboxes []string      `json:"mailboxes,omitempty"`
	Kinds     []MailboxKind `json:"kinds,omitempty"`
	// Folders are folder names; "Projects/*" also matches the folders
	// below Projects.
	Folders []string `json:"folders,omitempty"`
	// Addresses match a sender or recipient: an address, or a domain
	// ("example.com" or "@example.com").
	Addresses []string `json:"addresses,omitempty"`
	// Query is a filter in the JMAP Email/query filter language
	// (RFC 8621 4.4.1, without inMailbox and keywords).
	Query     json.RawMessage `json:"query,omitempty"`
	Min       Period          `json:"min"`
	Max       *Period         `json:"max,omitempty"`
	MaxAction string          `json:"max_action,omitempty"`
}

// PolicySet is a tenant's ordered policies in one version.
type PolicySet struct {
	Version  int       `json:"version"`
	Updated  time.Time `json:"updated,omitempty"`
	By       string    `json:"by,omitempty"`
	Policies []Policy  `json:"policies"`
}

// DefaultPolicy applies where no policy matches, and is the whole policy
// set of a new tenant.
func DefaultPolicy() Policy {
	return Policy{Name: "default", Min: Period{Years: 10, From: FromMessage, EndOfYear: true}}
}

const policiesKey = "retention:policies"

func policyHistoryKey(v int) string { return fmt.Sprintf("retention:history:%08d", v) }

// RetentionPolicies returns the tenant's current policy set.
func (t *Tenant) RetentionPolicies() (PolicySet, error) {
	t.touch()
	var ps PolicySet
	err := t.db.View(func(tx *buntdb.Tx) error {
		v, err := tx.Get(policiesKey)
		if err == buntdb.ErrNotFound {
			ps = PolicySet{Policies: []Policy{DefaultPolicy()}}
			return nil
		}
		if err != nil {
			return err
		}
		return json.Unmarshal([]byte(v), &ps)
	})
	if err != nil {
		return ps, fmt.Errorf("read retention policies: %w", err)
	}
	return ps, nil
}

// PolicyHistory returns every earlier version of the policy set, oldest
// first.
func (t *Tenant) PolicyHistory() ([]PolicySet, error) {
	var out []PolicySet
	err := t.db.View(func(tx *buntdb.Tx) error {
		var ierr error
		tx.AscendKeys("retention:history:*", func(k, v string) bool {
			var ps PolicySet
			if ierr = json.Unmarshal([]byte(v), &ps); ierr != nil {
				return false
			}
			out = append(out, ps)
			return true
		})
		return ierr
	})
	return out, err
}

// SetRetentionPolicies replaces the policy set with a new version; only a
// compliance user may. The version replaced is kept in the history, and the
// change is audited.
func (t *Tenant) SetRetentionPolicies(ctx context.Context, actor string, policies []Policy) (PolicySet, error) {
	t.touch()
	if err := t.requireCompliance(actor); err != nil {
		return PolicySet{}, err
	}
	if len(policies) == 0 {
		return PolicySet{}, fmt.Errorf("%w: at least one policy is needed (the default keeps 10 years)", ErrInvalid)
	}
	seen := map[string]bool{}
	for i := range policies {
		p := &policies[i]
		if err := t.checkPolicy(p); err != nil {
			return PolicySet{}, err
		}
		if seen[p.Name] {
			return PolicySet{}, fmt.Errorf("%w: policy name %q used twice", ErrInvalid, p.Name)
		}
		seen[p.Name] = true
	}
	old, err := t.RetentionPolicies()
	if err != nil {
		return PolicySet{}, err
	}
	ps := PolicySet{Version: old.Version + 1, Updated: t.p.now().UTC(), By: actor, Policies: policies}
	names := make([]string, len(policies))
	for i, p := range policies {
		names[i] = p.Name
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	entries, next, undo := t.chainAudit(actor, t.p.now().UTC(), []AuditEntry{{Action: "retention-policies",
		Detail: fmt.Sprintf("version %d: %s", ps.Version, strings.Join(names, ", "))}})
	err = t.db.Update(func(tx *buntdb.Tx) error {
		if old.Version > 0 {
			if err := setJSON(tx, policyHistoryKey(old.Version), &old); err != nil {
				return err
			}
		}
		if err := setJSON(tx, policiesKey, &ps); err != nil {
			return err
		}
		return setJSON(tx, auditKey(entries[0].Seq), &entries[0])
	})
	if err != nil {
		undo()
		return PolicySet{}, fmt.Errorf("store retention policies: %w", err)
	}
	t.state.Audit, t.state.AuditHash = next.Audit, next.AuditHash
	t.retGen.Add(1)
	return ps, nil
}

func (t *Tenant) checkPolicy(p *Policy) error {
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" || strings.ContainsAny(p.Name, "\r\n\t,") {
		return fmt.Errorf("%w policy name %q", ErrInvalid, p.Name)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w policy %q: %s", ErrInvalid, p.Name, fmt.Sprintf(format, args...))
	}
	for i, a := range p.Mailboxes {
		na, err := NormalizeAddress(a)
		if err != nil {
			return bad("mailbox %q is not an address", a)
		}
		p.Mailboxes[i] = na
	}
	for _, k := range p.Kinds {
		if k != KindUser && k != KindShared && k != KindJournal {
			return bad("mailbox kind %q: want user, shared or journal", k)
		}
	}
	for i, f := range p.Folders {
		if f == "*" {
			continue
		}
		c, err := CleanFolderName(strings.TrimSuffix(f, "/*"))
		if err != nil {
			return bad("folder %q", f)
		}
		if strings.HasSuffix(f, "/*") {
			c += "/*"
		}
		p.Folders[i] = c
	}
	for i, a := range p.Addresses {
		n, err := normalizeAddressMatch(a)
		if err != nil {
			return bad("address %q is neither an address nor a domain", a)
		}
		p.Addresses[i] = n
	}
	if _, err := compileFilter(p.Query); err != nil {
		return bad("query: %v", err)
	}
	for _, per := range []*Period{&p.Min, p.Max} {
		if per == nil {
			continue
		}
		if per.Years < 0 || per.Months < 0 || per.Days < 0 || per.Years > 200 {
			return bad("periods are 0 to 200 years, months and days not negative")
		}
		switch per.From {
		case "":
			per.From = FromMessage
		case FromMessage, FromArchived:
		default:
			return bad("period from %q: want message or archived", per.From)
		}
	}
	if p.Max == nil {
		if p.MaxAction != "" {
			return bad("max_action without a maximum retention")
		}
		return nil
	}
	switch p.MaxAction {
	case ActionDelete, ActionReview:
	default:
		return bad("max_action %q: want delete or review", p.MaxAction)
	}
	// The maximum may never fall before the minimum, for any date.
	for _, ref := range []time.Time{time.Date(2001, 1, 31, 0, 0, 0, 0, time.UTC), time.Date(2004, 2, 29, 23, 0, 0, 0, time.UTC),
		time.Date(2010, 12, 31, 23, 59, 0, 0, time.UTC), time.Date(2023, 7, 1, 0, 0, 0, 0, time.UTC)} {
		for _, arch := range []time.Time{ref, ref.AddDate(3, 0, 0)} {
			if p.Max.until(ref.Unix(), arch.UnixNano()).Before(p.Min.until(ref.Unix(), arch.UnixNano())) {
				return bad("the maximum retention (%s) ends before the minimum (%s)", p.Max.String(), p.Min.String())
			}
		}
	}
	return nil
}

// normalizeAddressMatch returns an address, or a domain as "@domain".
func normalizeAddressMatch(a string) (string, error) {
	a = strings.TrimSpace(a)
	if strings.Contains(strings.TrimPrefix(a, "@"), "@") {
		return NormalizeAddress(a)
	}
	d, err := NormalizeDomain(strings.TrimPrefix(a, "@"))
	if err != nil {
		return "", err
	}
	return "@" + d, nil
}

func (t *Tenant) requireCompliance(actor string) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	u := t.users[actor]
	if u == nil || u.Disabled || !slices.Contains(t.rolesLocked(actor), RoleCompliance) {
		return fmt.Errorf("%w: only a compliance user may do this", ErrDenied)
	}
	return nil
}

// compiledPolicy is a policy resolved against the tenant's mailboxes and
// index for one evaluation.
type compiledPolicy struct {
	*Policy
	mailboxes map[uint64]bool // nil: any
	mids      map[uint64]bool // nil: no message conditions
}

func (c *compiledPolicy) matches(f *folderState, mb *Mailbox, mid uint64) bool {
	if c.mailboxes != nil && !c.mailboxes[f.Mailbox] {
		return false
	}
	if len(c.Kinds) > 0 && !slices.Contains(c.Kinds, mb.Kind) {
		return false
	}
	if len(c.Folders) > 0 && !slices.ContainsFunc(c.Folders, func(p string) bool { return folderMatches(p, f.Name) }) {
		return false
	}
	return c.mids == nil || c.mids[mid]
}

func folderMatches(pattern, name string) bool {
	if pattern == "*" || pattern == name {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/*"); ok {
		return name == base || strings.HasPrefix(name, base+"/")
	}
	return false
}

// messageQuery is the index query of a policy's or hold's message
// conditions; ok false when it has none.
func messageQuery(addresses []string, query json.RawMessage) (q index.Query, ok bool, err error) {
	var parts []index.Query
	if len(addresses) > 0 {
		var any []index.Query
		for _, a := range addresses {
			for _, f := range []index.Field{index.FieldFrom, index.FieldTo, index.FieldCc, index.FieldBcc} {
				any = append(any, index.Text(f, a))
			}
		}
		parts = append(parts, index.Or(any...))
	}
	f, err := ParseFilter(query)
	if err != nil {
		return q, false, err
	}
	if f != nil {
		fq, err := f.Query(nil, nil, nil)
		if err != nil {
			return q, false, err
		}
		parts = append(parts, fq)
	}
	switch len(parts) {
	case 0:
		return q, false, nil
	case 1:
		return parts[0], true, nil
	}
	return index.And(parts...), true, nil
}

// findAll runs q over every folder of the tenant and returns the matching
// MIDs as a set.
func (t *Tenant) findAll(ctx context.Context, q index.Query) (map[uint64]bool, error) {
	t.mu.RLock()
	folders := make([]uint64, 0, len(t.folders))
	for id := range t.folders {
		folders = append(folders, id)
	}
	t.mu.RUnlock()
	mids, _, err := t.ix.Find(ctx, folders, q, nil, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("retention query: %w", err)
	}
	set := make(map[uint64]bool, len(mids))
	for _, m := range mids {
		set[m] = true
	}
	return set, nil
}
