package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/server"
)

// complianceFlags add -user to a tenant command: changes to retention and
// holds are made by a compliance user, whose password comes from
// $MAILVAULT_PASSWORD or a line on standard input.
type complianceFlags struct {
	tenantFlags
	user *string
}

func addComplianceFlags(fs *flag.FlagSet) complianceFlags {
	return complianceFlags{tenantFlags: addTenantFlags(fs),
		user: fs.String("user", "", "login of a compliance user (password from $MAILVAULT_PASSWORD or standard input); needed for changes")}
}

func (cf complianceFlags) connect(fs *flag.FlagSet, args []string) (*server.Client, []string, error) {
	pos, err := cf.parse(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if *cf.user == "" {
		c, err := cf.client()
		return c, pos, err
	}
	_, base, err := cf.endpoint()
	if err != nil {
		return nil, nil, err
	}
	pw := os.Getenv("MAILVAULT_PASSWORD")
	if pw == "" {
		fmt.Fprintf(os.Stderr, "password of %s: ", *cf.user)
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return nil, nil, fmt.Errorf("read password: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	return &server.Client{BaseURL: base, User: *cf.user, Password: pw}, pos, nil
}

func (cf complianceFlags) needUser() error {
	if *cf.user == "" {
		return fmt.Errorf("-user is required: only a compliance user may do this")
	}
	return nil
}

// selectionFlags select placements for a dry run or a deletion.
type selectionFlags struct {
	mailboxes, folders, mids multiFlag
	query, before            *string
	all                      *bool
}

func addSelectionFlags(fs *flag.FlagSet) *selectionFlags {
	s := &selectionFlags{
		query:  fs.String("query", "", "JMAP Email/query filter (JSON) the messages must match"),
		before: fs.String("before", "", "only messages dated before this day (YYYY-MM-DD)"),
		all:    fs.Bool("all", false, "select every placement (still only those past their minimum and under no hold)"),
	}
	fs.Var(&s.mailboxes, "mailbox", "archive mailbox address (repeatable)")
	fs.Var(&s.folders, "folder", "folder name, \"Projects/*\" for a subtree (repeatable)")
	fs.Var(&s.mids, "mid", "message number (repeatable)")
	return s
}

func (s *selectionFlags) request() (backend.DeleteRequest, error) {
	req := backend.DeleteRequest{Mailboxes: s.mailboxes, Folders: s.folders, All: *s.all}
	var err error
	if req.Query, err = jsonArg("query", *s.query); err != nil {
		return req, err
	}
	if *s.before != "" {
		d, err := time.Parse(time.DateOnly, *s.before)
		if err != nil {
			return req, fmt.Errorf("-before: %w", err)
		}
		req.Before = &d
	}
	for _, m := range s.mids {
		n, err := strconv.ParseUint(m, 10, 64)
		if err != nil {
			return req, fmt.Errorf("-mid %q: %w", m, err)
		}
		req.MIDs = append(req.MIDs, n)
	}
	return req, nil
}

func cmdRetention(ctx context.Context, args []string) error {
	op, args, err := sub(args, "policies, set, history, show, dry-run, delete, run, reports")
	if err != nil {
		return err
	}
	fs := newFlags("retention "+op, "retention policies -tenant T | set -tenant T -user U FILE.json | history -tenant T | show -tenant T MID | "+
		"dry-run -tenant T [-job | selection] | delete -tenant T -user U -confirm TOKEN selection | run -tenant T -user U | reports -tenant T\n\n"+
		"A selection is any of -mailbox A, -folder F, -query JSON, -before YYYY-MM-DD, -mid N, -all; delete takes the same selection as its dry run.")
	cf := addComplianceFlags(fs)
	sel := addSelectionFlags(fs)
	confirm := fs.String("confirm", "", "the token of the dry run this deletion confirms (delete)")
	job := fs.Bool("job", false, "dry-run the retention job: what is past a maximum retention")
	c, pos, err := cf.connect(fs, args)
	if err != nil {
		return err
	}
	tenant := *cf.tenant
	switch op {
	case "policies":
		return present(c, *cf.json, "GET", tenantPath(tenant, "retention", "policies"), nil, printPolicies)
	case "set":
		if err := cf.needUser(); err != nil {
			return err
		}
		if err := need(pos, 1, "policy file (JSON: a list of policies, or {\"policies\": [...]})"); err != nil {
			return err
		}
		b, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		var req server.PoliciesRequest
		if err := json.Unmarshal(b, &req.Policies); err != nil {
			if err := json.Unmarshal(b, &req); err != nil {
				return fmt.Errorf("%s: %w", pos[0], err)
			}
		}
		return present(c, *cf.json, "PUT", tenantPath(tenant, "retention", "policies"), req, func(ps backend.PolicySet) error {
			fmt.Printf("retention policies version %d set by %s\n", ps.Version, ps.By)
			return printPolicies(ps)
		})
	case "history":
		return present(c, *cf.json, "GET", tenantPath(tenant, "retention", "policies", "history"), nil, func(hist []backend.PolicySet) error {
			for _, ps := range hist {
				printPolicies(ps)
				fmt.Println()
			}
			return nil
		})
	case "show":
		if err := need(pos, 1, "message number (MID)"); err != nil {
			return err
		}
		return present(c, *cf.json, "GET", tenantPath(tenant, "retention", "messages", pos[0]), nil, printRetention)
	case "dry-run":
		if *job {
			return present(c, *cf.json, "POST", tenantPath(tenant, "retention", "job", "dry-run"), struct{}{}, printPlan)
		}
		req, err := sel.request()
		if err != nil {
			return err
		}
		return present(c, *cf.json, "POST", tenantPath(tenant, "retention", "dry-run"), req, printPlan)
	case "delete":
		if err := cf.needUser(); err != nil {
			return err
		}
		if *confirm == "" {
			return fmt.Errorf("-confirm is required: run `mailvault retention dry-run` with the same selection first and pass its token")
		}
		req, err := sel.request()
		if err != nil {
			return err
		}
		return present(c, *cf.json, "POST", tenantPath(tenant, "retention", "delete"), server.DeleteConfirm{Request: req, Token: *confirm}, printReport)
	case "run":
		if err := cf.needUser(); err != nil {
			return err
		}
		return present(c, *cf.json, "POST", tenantPath(tenant, "retention", "job", "run"), struct{}{}, printReport)
	case "reports":
		return present(c, *cf.json, "GET", tenantPath(tenant, "retention", "reports"), nil, func(reps []backend.RunReport) error {
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tBY\tREASON\tFINISHED\tPLACEMENTS\tMESSAGES")
			for _, r := range reps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", r.ID, r.Actor, r.Reason, r.Finished.Format(time.RFC3339), r.Placements, r.Messages)
			}
			return tw.Flush()
		})
	}
	return fmt.Errorf("unknown sub-command %q", op)
}

func printRetention(r backend.Retention) error {
	fmt.Printf("message %d, dated %s, archived %s; policies version %d\n", r.MID, r.Received.Format(time.DateOnly), r.Archived.Format(time.RFC3339), r.PolicyVersion)
	fmt.Printf("bytes kept at least until %s", r.MinUntil.Format(time.DateOnly))
	if r.MaxUntil != nil {
		fmt.Printf(", at most until %s", r.MaxUntil.Format(time.DateOnly))
	}
	fmt.Println()
	for _, h := range r.Holds {
		fmt.Printf("under legal hold %s (case %s)\n", h.ID, h.Case)
	}
	if r.IndexPending {
		fmt.Println("not indexed yet: queries cannot judge it, so it is not deletable now")
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MAILBOX\tFOLDER\tUID\tPOLICY\tMIN UNTIL\tMAX UNTIL\tHOLDS\tDELETABLE")
	for _, p := range r.Placements {
		maxU := "-"
		if p.MaxUntil != nil {
			maxU = p.MaxUntil.Format(time.DateOnly) + " (" + p.MaxAction + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%v\n", p.Mailbox, p.Folder, p.UID, p.Policy, p.MinUntil.Format(time.DateOnly), maxU, show(strings.Join(p.Holds, ",")), p.Deletable)
	}
	tw.Flush()
	return nil
}

func printPolicies(ps backend.PolicySet) error {
	fmt.Printf("version %d", ps.Version)
	if ps.By != "" {
		fmt.Printf(", set %s by %s", ps.Updated.Format(time.RFC3339), ps.By)
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tPOLICY\tMATCHES\tMINIMUM\tMAXIMUM")
	for i, p := range ps.Policies {
		var m []string
		if len(p.Mailboxes) > 0 {
			m = append(m, "mailbox "+strings.Join(p.Mailboxes, ","))
		}
		if len(p.Kinds) > 0 {
			ks := make([]string, len(p.Kinds))
			for i, k := range p.Kinds {
				ks[i] = string(k)
			}
			m = append(m, "kind "+strings.Join(ks, ","))
		}
		if len(p.Folders) > 0 {
			m = append(m, "folder "+strings.Join(p.Folders, ","))
		}
		if len(p.Addresses) > 0 {
			m = append(m, "address "+strings.Join(p.Addresses, ","))
		}
		if len(p.Query) > 0 {
			m = append(m, "query "+string(p.Query))
		}
		if len(m) == 0 {
			m = []string{"everything"}
		}
		maxS := "-"
		if p.Max != nil {
			maxS = p.Max.String() + ", then " + p.MaxAction
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, p.Name, strings.Join(m, "; "), p.Min.String(), maxS)
	}
	return tw.Flush()
}

func printPlan(pl server.PlanAnswer) error {
	fmt.Printf("as of %s (policies version %d): %d placements would be deleted, %d messages with their bytes (%d bytes)\n",
		pl.AsOf.Format(time.RFC3339), pl.PolicyVersion, pl.Placements, pl.Messages, pl.Bytes)
	for name, n := range pl.ByPolicy {
		fmt.Printf("  policy %s: %d\n", name, n)
	}
	fmt.Printf("kept: %d under legal hold, %d before their minimum retention, %d not indexed yet\n", pl.Held, pl.Protected, pl.Unindexed)
	if len(pl.Review) > 0 {
		fmt.Printf("%d placements past their maximum retention wait for review\n", len(pl.Review))
	}
	if len(pl.Items) > 0 {
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MID\tMAILBOX\tFOLDER\tUID\tPOLICY")
		for _, it := range pl.Items {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", it.MID, it.Mailbox, it.Folder, it.UID, it.Policy)
		}
		tw.Flush()
		if pl.Truncated {
			fmt.Println("(list truncated; the counts are complete)")
		}
	}
	fmt.Printf("token: %s\n", pl.Token)
	return nil
}

func printReport(r backend.RunReport) error {
	fmt.Printf("run %s by %s: %d placements deleted, %d messages with their bytes; took %s\n", r.ID, r.Actor, r.Placements, r.Messages, r.Took.Round(time.Millisecond))
	if r.Review > 0 || r.Held > 0 {
		fmt.Printf("%d placements wait for review, %d are under legal hold\n", r.Review, r.Held)
	}
	return nil
}

func cmdHold(ctx context.Context, args []string) error {
	op, args, err := sub(args, "list, place, lift")
	if err != nil {
		return err
	}
	fs := newFlags("hold "+op, "hold list -tenant T | place -tenant T -user U -case ID -reason TEXT [-owner O] [-mailbox A]... [-from YYYY-MM-DD] [-to YYYY-MM-DD] [-query JSON] | lift -tenant T -user U HOLD-ID")
	cf := addComplianceFlags(fs)
	caseID := fs.String("case", "", "case id (place)")
	reason := fs.String("reason", "", "why the hold is placed (place)")
	owner := fs.String("owner", "", "who owns the hold (default: the user placing it)")
	from := fs.String("from", "", "messages dated on or after this day")
	to := fs.String("to", "", "messages dated before this day")
	query := fs.String("query", "", "JMAP Email/query filter (JSON); it also covers mail archived later")
	var mailboxes multiFlag
	fs.Var(&mailboxes, "mailbox", "archive mailbox address (repeatable)")
	c, pos, err := cf.connect(fs, args)
	if err != nil {
		return err
	}
	tenant := *cf.tenant
	switch op {
	case "list":
		return present(c, *cf.json, "GET", tenantPath(tenant, "holds"), nil, func(hs []backend.Hold) error {
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCASE\tREASON\tOWNER\tSCOPE\tPLACED\tLIFTED")
			for _, h := range hs {
				lifted := "-"
				if h.Lifted != nil {
					lifted = h.Lifted.Format(time.RFC3339) + " by " + h.LiftedBy
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s by %s\t%s\n", h.ID, h.Case, h.Reason, h.Owner, holdScope(h), h.Placed.Format(time.RFC3339), h.PlacedBy, lifted)
			}
			return tw.Flush()
		})
	case "place":
		if err := cf.needUser(); err != nil {
			return err
		}
		h := backend.Hold{Case: *caseID, Reason: *reason, Owner: *owner, Mailboxes: mailboxes}
		for _, d := range []struct {
			s   string
			dst **time.Time
		}{{*from, &h.From}, {*to, &h.To}} {
			if d.s == "" {
				continue
			}
			v, err := time.Parse(time.DateOnly, d.s)
			if err != nil {
				return err
			}
			*d.dst = &v
		}
		if h.Query, err = jsonArg("query", *query); err != nil {
			return err
		}
		return present(c, *cf.json, "POST", tenantPath(tenant, "holds"), h, func(out backend.Hold) error {
			fmt.Printf("legal hold %s placed (case %s): %s\n", out.ID, out.Case, holdScope(out))
			return nil
		})
	case "lift":
		if err := cf.needUser(); err != nil {
			return err
		}
		if err := need(pos, 1, "hold id"); err != nil {
			return err
		}
		return present(c, *cf.json, "DELETE", tenantPath(tenant, "holds", pos[0]), nil, func(out backend.Hold) error {
			fmt.Printf("legal hold %s lifted (case %s)\n", out.ID, out.Case)
			return nil
		})
	}
	return fmt.Errorf("unknown sub-command %q", op)
}

func holdScope(h backend.Hold) string {
	var parts []string
	if len(h.Mailboxes) > 0 {
		parts = append(parts, "mailbox "+strings.Join(h.Mailboxes, ","))
	}
	if h.From != nil {
		parts = append(parts, "from "+h.From.Format(time.DateOnly))
	}
	if h.To != nil {
		parts = append(parts, "to "+h.To.Format(time.DateOnly))
	}
	if len(h.Query) > 0 {
		parts = append(parts, "query "+string(h.Query))
	}
	if len(parts) == 0 {
		return "everything"
	}
	return strings.Join(parts, "; ")
}
