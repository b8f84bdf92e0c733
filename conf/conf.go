package conf

import (
	_ "embed"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole server configuration. Field tags name the TOML keys;
// the environment variable of a key is MAILVAULT_<SECTION>_<KEY> in upper
// case, e.g. MAILVAULT_IMAP_LISTEN.
type Config struct {
	DataDir  string `toml:"data_dir"`
	LogLevel string `toml:"log_level"`
	// LogFormat is text (key=value) or json, one object per line.
	LogFormat string `toml:"log_format"`

	HTTP  HTTP  `toml:"http"`
	IMAP  IMAP  `toml:"imap"`
	SMTP  SMTP  `toml:"smtp"`
	Store Store `toml:"store"`
	Login Login `toml:"login"`
	// Evidence: RFC 3161 timestamps of the hash chains.
	Evidence Evidence `toml:"evidence"`
}

// HTTP is the listener for JMAP and the management API.
type HTTP struct {
	Listen string `toml:"listen"`
	// PublicURL is the absolute base URL clients reach the server at; empty
	// means http://<listen>.
	PublicURL string `toml:"public_url"`
	// MetricsListen serves /metrics (Prometheus), /healthz and /readyz on
	// a listener of their own; empty serves them on Listen.
	MetricsListen string `toml:"metrics_listen"`
}

// IMAP configures the read-only IMAP access.
type IMAP struct {
	Listen    string `toml:"listen"`
	ListenTLS string `toml:"listen_tls"`
	CertFile  string `toml:"cert_file"`
	KeyFile   string `toml:"key_file"`
}

// SMTP configures the journal endpoint.
type SMTP struct {
	Listen          string   `toml:"listen"`
	Hostname        string   `toml:"hostname"`
	MaxMessageBytes int64    `toml:"max_message_bytes"`
	ReadTimeout     Duration `toml:"read_timeout"`
}

// Store tunes the archive store.
type Store struct {
	// MaxIndexedText caps the decoded text indexed per message (bytes).
	MaxIndexedText int `toml:"max_indexed_text"`
	// IdleClose closes a tenant's files after this long without use.
	IdleClose Duration `toml:"idle_close"`
	// CommitDelay is how long ingest waits to gather more messages into one
	// fsynced commit.
	CommitDelay Duration `toml:"commit_delay"`
	// Free disk space kept for the archive, each floor the larger of bytes
	// and percent of the filesystem: below the index floor the full-text
	// index pauses (it catches up later from the archive); below the
	// smaller intake floor new messages are refused as a full disk (SMTP
	// 452), so that audit entries and metadata commits still fit.
	IndexMinFreeBytes    int64 `toml:"index_min_free_bytes"`
	IndexMinFreePercent  int   `toml:"index_min_free_percent"`
	IntakeMinFreeBytes   int64 `toml:"intake_min_free_bytes"`
	IntakeMinFreePercent int   `toml:"intake_min_free_percent"`
	// RetentionInterval is how often the retention job runs (deleting what
	// is past a maximum retention whose policy says delete); 0: never.
	RetentionInterval Duration `toml:"retention_interval"`
	// Blobs is where the sealed messages go: "packs" (pack files in each
	// tenant's directory) or "s3" (an S3-compatible object store, S3).
	Blobs string `toml:"blobs"`
	S3    S3     `toml:"s3"`
}

// S3 locates the object store of store.blobs = "s3". Each tenant's objects
// are under Prefix + "<tenant>/"; "{tenant}" in Bucket or Prefix puts the
// tenant's name there instead (a bucket per tenant).
type S3 struct {
	Endpoint  string `toml:"endpoint"` // host:port
	Bucket    string `toml:"bucket"`
	Prefix    string `toml:"prefix"`
	Region    string `toml:"region"`
	AccessKey string `toml:"access_key"`
	SecretKey string `toml:"secret_key"`
	// SecretKeyFile holds the secret key (its first line) when SecretKey
	// is empty.
	SecretKeyFile string `toml:"secret_key_file"`
	TLS           bool   `toml:"tls"`
	CAFile        string `toml:"ca_file"`
	// PartSize: objects larger than this go up as multipart uploads of
	// parts this large.
	PartSize int64 `toml:"part_size"`
	// Retries of a failed request, with exponential backoff; Timeout
	// bounds one operation with its retries.
	Retries int      `toml:"retries"`
	Timeout Duration `toml:"timeout"`
}

// Login bounds the password checks of every protocol (IMAP, JMAP, SMTP
// AUTH); 0 sizes a limit to the machine.
type Login struct {
	// MaxChecks is how many argon2id checks (about 19 MiB each) run at once.
	MaxChecks int `toml:"max_checks"`
	// MaxWaiting is how many logins may wait for a check; beyond it logins
	// are answered "try again later" at once.
	MaxWaiting int `toml:"max_waiting"`
}

// Evidence configures the RFC 3161 timestamps of every tenant's message
// and audit chain heads.
type Evidence struct {
	// TSAURL is the time-stamping authority (any RFC 3161 service over
	// HTTP); empty takes no timestamps.
	TSAURL string `toml:"tsa_url"`
	// TSACAFile holds the PEM certificates a token's signer must chain to.
	TSACAFile string   `toml:"tsa_ca_file"`
	Interval  Duration `toml:"interval"`
}

// Duration is a time.Duration that reads "30s" style strings from TOML and
// the environment.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the embedded default: everything on loopback, data under
// ./mailvault-data, no external service needed.
func Default() Config {
	return Config{
		DataDir:   "mailvault-data",
		LogLevel:  "info",
		LogFormat: "text",
		HTTP:      HTTP{Listen: "127.0.0.1:8080"},
		IMAP:      IMAP{Listen: "127.0.0.1:1143", ListenTLS: "127.0.0.1:1993"},
		SMTP: SMTP{
			Listen:          "127.0.0.1:2525",
			Hostname:        "localhost",
			MaxMessageBytes: 150 << 20,
			ReadTimeout:     Duration{30 * time.Minute},
		},
		Evidence: Evidence{Interval: Duration{24 * time.Hour}},
		Store: Store{
			MaxIndexedText: 1 << 20,
			IdleClose:      Duration{10 * time.Minute},
			CommitDelay:    Duration{2 * time.Millisecond},

			IndexMinFreeBytes:    1 << 30,
			IndexMinFreePercent:  2,
			IntakeMinFreeBytes:   256 << 20,
			IntakeMinFreePercent: 1,
			RetentionInterval:    Duration{24 * time.Hour},
			Blobs:                "packs",
			S3: S3{
				Prefix:   "mailvault/",
				PartSize: 16 << 20,
				Retries:  5,
				Timeout:  Duration{2 * time.Minute},
			},
		},
	}
}

// Load returns the defaults overridden by the TOML file at path (if path is
// not empty) and then by the environment.
func Load(path string, environ []string) (Config, error) {
	c := Default()
	if path != "" {
		md, err := toml.DecodeFile(path, &c)
		if err != nil {
			return c, fmt.Errorf("read config %s: %w", path, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return c, fmt.Errorf("config %s: unknown key %q (see `mailvault config example`)", path, und[0].String())
		}
	}
	if err := applyEnv(&c, environ); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate checks values that would otherwise fail late.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("config: data_dir must not be empty")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("config: log_format %q: want text or json", c.LogFormat)
	}
	if c.SMTP.MaxMessageBytes <= 0 {
		return fmt.Errorf("config: smtp.max_message_bytes must be positive")
	}
	if c.Evidence.TSAURL != "" && c.Evidence.Interval.Duration < time.Second {
		return fmt.Errorf("config: evidence.interval must be at least 1s")
	}
	st := c.Store
	if st.IndexMinFreeBytes < 0 || st.IntakeMinFreeBytes < 0 {
		return fmt.Errorf("config: store.*_min_free_bytes must not be negative")
	}
	for _, p := range []int{st.IndexMinFreePercent, st.IntakeMinFreePercent} {
		if p < 0 || p > 50 {
			return fmt.Errorf("config: store.*_min_free_percent %d: want 0 to 50", p)
		}
	}
	switch st.Blobs {
	case "packs":
	case "s3":
		if st.S3.Endpoint == "" || st.S3.Bucket == "" {
			return fmt.Errorf("config: store.blobs = \"s3\" needs store.s3.endpoint and store.s3.bucket")
		}
		if st.S3.PartSize < 5<<20 {
			return fmt.Errorf("config: store.s3.part_size %d: S3 parts are at least 5 MiB (5242880)", st.S3.PartSize)
		}
		if st.S3.Retries < 0 || st.S3.Timeout.Duration < time.Second {
			return fmt.Errorf("config: store.s3.retries must not be negative and store.s3.timeout be at least 1s")
		}
	default:
		return fmt.Errorf("config: store.blobs %q: want packs or s3", st.Blobs)
	}
	indexOn := st.IndexMinFreeBytes > 0 || st.IndexMinFreePercent > 0
	if indexOn && (st.IntakeMinFreeBytes > st.IndexMinFreeBytes || st.IntakeMinFreePercent > st.IndexMinFreePercent) {
		return fmt.Errorf("config: the intake floor (store.intake_min_free_*) must not exceed the index floor (store.index_min_free_*): the index pauses before intake refuses")
	}
	return nil
}

// applyEnv walks the struct and sets every field whose MAILVAULT_ variable is
// present, so that each key is reachable from the environment without a
// hand-kept list.
func applyEnv(c *Config, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "MAILVAULT_") {
			env[k] = v
		}
	}
	if len(env) == 0 {
		return nil
	}
	if err := walkEnv(reflect.ValueOf(c).Elem(), "MAILVAULT", env); err != nil {
		return err
	}
	// walkEnv removed what it used: the rest is misspelt, as a TOML key
	// would be, unless it is meant for something else.
	var unknown []string
	for k := range env {
		if !otherEnv(k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("environment: unknown variable %s: not a configuration key (MAILVAULT_<SECTION>_<KEY> of `mailvault config example`)", strings.Join(unknown, ", "))
	}
	return nil
}

// otherEnv reports MAILVAULT_ variables that are no configuration keys:
// the CLI's provider token, a compliance user's password and the sizes of the benchmarks.
func otherEnv(name string) bool {
	return name == "MAILVAULT_TOKEN" || name == "MAILVAULT_PASSWORD" || strings.Contains(name, "_BENCH_") || strings.HasPrefix(name, "MAILVAULT_BENCH")
}

func walkEnv(v reflect.Value, prefix string, env map[string]string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := prefix + "_" + strings.ToUpper(f.Tag.Get("toml"))
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Duration{}) {
			if err := walkEnv(fv, name, env); err != nil {
				return err
			}
			continue
		}
		s, ok := env[name]
		if !ok {
			continue
		}
		delete(env, name)
		if err := setValue(fv, s); err != nil {
			return fmt.Errorf("environment %s=%q: %w", name, s, err)
		}
	}
	return nil
}

func setValue(v reflect.Value, s string) error {
	if v.Type() == reflect.TypeOf(Duration{}) {
		return v.Addr().Interface().(*Duration).UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("unsupported kind %s", v.Kind())
	}
	return nil
}

//go:embed example.toml
var example string

// Example returns a commented configuration file listing every key with its
// default.
func Example() string { return example }
