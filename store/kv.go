package store

import (
	"fmt"

	"github.com/tidwall/buntdb"
)

// OpenKV opens a buntdb file with every commit fsynced before it returns.
// Callers batch many records into one transaction (group commit) so that the
// fsync is paid once per batch.
func OpenKV(path string) (*buntdb.DB, error) {
	db, err := buntdb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open metadata %s: %w", path, err)
	}
	var cfg buntdb.Config
	if err := db.ReadConfig(&cfg); err != nil {
		db.Close()
		return nil, err
	}
	cfg.SyncPolicy = buntdb.Always
	// Shrinking rewrites the file without fsync (see library notes); run it
	// only on demand, when the archive is quiet.
	cfg.AutoShrinkDisabled = true
	if err := db.SetConfig(cfg); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}
