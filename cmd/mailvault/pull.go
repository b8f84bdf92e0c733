package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mailvault/mailvault/pull"
)

func cmdPull(ctx context.Context, args []string) error {
	op, args, err := sub(args, "run, profiles, show, put, delete")
	if err != nil {
		return err
	}
	fs := newFlags("pull "+op, "pull run -tenant T PROFILE | profiles -tenant T | show -tenant T PROFILE | put -tenant T PROFILE -file PROFILE.json | delete -tenant T PROFILE")
	tf := addTenantFlags(fs)
	tenant := tf.tenant
	file := fs.String("file", "", "profile as JSON (see docs/import.md)")
	c, pos, err := tf.connect(fs, args)
	if err != nil {
		return err
	}
	if op != "run" {
		return profileCmds{c: c, tenant: *tenant, area: "pull",
			saved:   "pull profile %[1]s saved; run it with `mailvault pull run -tenant %[2]s %[1]s`",
			deleted: "pull profile %[1]s deleted; the mail it archived stays"}.run(op, pos, *file)
	}
	if err := need(pos, 1, "profile name"); err != nil {
		return err
	}
	var r pull.Report
	if err := c.Do("POST", tenantPath(*tenant, "pull", "profiles", pos[0], "run"), nil, &r); err != nil {
		return err
	}
	if *tf.json {
		printJSON(r)
	} else {
		writePullReport(os.Stdout, &r)
	}
	if r.Error != "" {
		return fmt.Errorf("pull %s failed: %s", pos[0], r.Error)
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("pull %s: %d message(s) not archived; the next run tries them again", pos[0], len(r.Errors))
	}
	return nil
}

func writePullReport(w io.Writer, r *pull.Report) {
	var b strings.Builder
	fmt.Fprintf(&b, "pull %s of tenant %s: %d folders, %d fetched, %d archived, %d duplicates, %d errors in %s\n",
		r.Profile, r.Tenant, len(r.Folders), r.Fetched, r.Archived, r.Duplicates, len(r.Errors), time.Duration(r.Duration).Round(time.Millisecond))
	for _, f := range r.Folders {
		fmt.Fprintf(&b, "  %-30s -> %-30s %6d fetched %6d archived %6d duplicates", f.Source, f.Archive, f.Fetched, f.Archived, f.Duplicates)
		if f.Restarted {
			b.WriteString("  (UIDVALIDITY changed: fetched from the start)")
		}
		b.WriteByte('\n')
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "  error: %s\n", e)
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "FAILED: %s\n", r.Error)
	}
	io.WriteString(w, b.String())
}
