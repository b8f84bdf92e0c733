package main

import (
	"context"
	"fmt"
	"os"

	"github.com/mailvault/mailvault/dirsync"
)

func cmdDirsync(ctx context.Context, args []string) error {
	op, args, err := sub(args, "run, profiles, show, put, delete")
	if err != nil {
		return err
	}
	fs := newFlags("dirsync "+op, "dirsync run -tenant T [-profile P] [-dry-run] | profiles -tenant T | show -tenant T PROFILE | put -tenant T PROFILE -file PROFILE.json | delete -tenant T PROFILE")
	tf := addTenantFlags(fs)
	tenant := tf.tenant
	profile := fs.String("profile", "", "run only this profile (default: every profile of the tenant)")
	dryRun := fs.Bool("dry-run", false, "print the changes a run would make, change nothing")
	file := fs.String("file", "", "profile as JSON (see docs/directory.md)")
	c, pos, err := tf.connect(fs, args)
	if err != nil {
		return err
	}
	if op != "run" {
		return profileCmds{c: c, tenant: *tenant, area: "dirsync",
			saved:   "directory profile %[1]s saved; try it with `mailvault dirsync run -tenant %[2]s -profile %[1]s -dry-run`",
			deleted: "directory profile %[1]s deleted; its users are kept but can no longer log in"}.run(op, pos, *file)
	}
	q := ""
	if *dryRun {
		q = "?dry_run=true"
	}
	var reports []*dirsync.Report
	if *profile != "" {
		var r dirsync.Report
		if err := c.Do("POST", tenantPath(*tenant, "dirsync", "profiles", *profile, "run")+q, nil, &r); err != nil {
			return err
		}
		reports = append(reports, &r)
	} else if err := c.Do("POST", tenantPath(*tenant, "dirsync", "run")+q, nil, &reports); err != nil {
		return err
	}
	failed := 0
	for _, r := range reports {
		if *tf.json {
			printJSON(r)
		} else if err := r.WriteText(os.Stdout); err != nil {
			return err
		}
		if r.Error != "" {
			failed++
		}
	}
	if len(reports) == 0 {
		fmt.Printf("tenant %s has no directory sync profile (add one with `mailvault dirsync put`)\n", *tenant)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d directory sync run(s) failed", failed, len(reports))
	}
	return nil
}
