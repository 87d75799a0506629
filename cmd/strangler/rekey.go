package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"strangler/config/configfile"
	"strangler/internal/filecap"
	"strangler/store"
)

// runRekey runs `strangler store rekey`: it encrypts, under the first of
// store_encryption.keys, everything the store keeps encrypted or would,
// that is not yet: what was stored before store_encryption was set, and
// what an older key encrypted.
func runRekey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("store rekey", flag.ContinueOnError)
	setUsage(fs, `store rekey --config FILE

Encrypts under the first of store_encryption.keys whatever the state store
holds in clear or under another key: journaled dual writes, shadow
samples, queued read-repair keys and the store's hash key. Run it after
adding store_encryption, and after putting a new key first; then the
older keys can be dropped. It may run while facades use the store.`)
	path := fs.String("config", "", "configuration `file` (YAML): its store and store_encryption")
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return usageError{fmt.Sprintf("store rekey: unexpected argument %q", rest[0])}
	case *path == "":
		return usageError{"store rekey: --config FILE is required"}
	}
	cfg, err := configfile.Load(*path, configfile.Env{Getenv: getenv, ReadFile: filecap.Read})
	if err != nil {
		return err
	}
	keys := cfg.EncryptionKeys()
	if len(keys) == 0 {
		return usageError{fmt.Sprintf("store rekey: %s has no store_encryption keys: nothing to encrypt with", *path)}
	}
	log, err := newLogger(stderr, getenv)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, string(cfg.Store), log, store.WithEncryption(keys))
	if err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	defer st.Close()
	rep, err := st.Rekey(ctx)
	fmt.Fprintf(stdout, "encrypted under the first key: %d journaled writes, %d shadow samples, %d read-repair keys, %d store secrets, %d API backfill rows and groups\n",
		rep.Repairs, rep.Samples, rep.RepairKeys, rep.Secrets, rep.APIBackfill)
	if err != nil {
		return err
	}
	if rep.Unreadable > 0 {
		return fmt.Errorf("store rekey: %d rows are encrypted with a key that is not in store_encryption.keys and were left as they are; "+
			"they cannot be read until that key is listed again (the log names it)", rep.Unreadable)
	}
	return nil
}
