package config

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/isthmus-xmpp/isthmus/link/linkkey"

	"mellium.im/xmpp/jid"
)

// Bounds checked by Validate.
const (
	MinBatchBytes     = 256
	MaxBatchBytes     = 1 << 20
	MinStanzaSize     = 1024
	MaxStanzaSize     = 16 << 20
	MaxQueueLimit     = 1_000_000
	MaxRateBPS        = 100_000_000_000 // 100 Gbit/s
	MinRateBPS        = 50              // slowest HF modes; 0 means unpaced
	MinSecretLength   = 16
	MaxNameLength     = 64
	MaxBatchWindow    = 10 * time.Second
	MaxPresenceWindow = time.Minute
	MinSpoolBytes     = 64 << 10
	MaxSpoolBytes     = 64 << 30
	MinLearnDictBytes = 256 << 10 // compress.MinLearnBytes
	MaxLearnDictBytes = 64 << 20
	maxLongDuration   = 24 * time.Hour
)

// Validate checks the whole configuration and returns the first problem as
// an *Error naming the key. It does not touch the file system.
func (c *Config) Validate() error { return c.ValidateWith(Supplied{}) }

// Supplied names the link settings a program hands the gateway itself
// instead of through the configuration (gateway.Options, in tests and the
// demo). ValidateWith does not require the keys they replace.
type Supplied struct {
	PrivateKey   bool // instead of link.key_file
	LinkDial     bool // a dial function instead of link.dial
	LinkListener bool // a listener instead of link.listen
}

// ValidateWith is Validate for a configuration whose link key or
// addresses s supplies.
func (c *Config) ValidateWith(s Supplied) error {
	if err := c.validateTop(); err != nil {
		return err
	}
	if err := c.validateDomains(); err != nil {
		return err
	}
	if err := c.Link.validate(s); err != nil {
		return err
	}
	if err := c.S2S.validate(); err != nil {
		return err
	}
	return c.Presence.validate()
}

// MaxPresenceEntries bounds presence.max_entries.
const MaxPresenceEntries = 10_000_000

// Bounds of presence.max_bytes.
const (
	MinPresenceBytes = 64 << 10
	MaxPresenceBytes = 64 << 30
)

func (p *Presence) validate() error {
	if err := checkDuration("presence.fanout_window", p.FanoutWindow, 1, time.Millisecond, MaxBatchWindow); err != nil {
		return err
	}
	if err := checkDuration("presence.refresh_interval", p.RefreshInterval, 1, time.Second, maxLongDuration); err != nil {
		return err
	}
	if err := checkDuration("presence.reprobe_interval", p.ReprobeInterval, 1, time.Second, maxLongDuration); err != nil {
		return err
	}
	if err := checkDuration("presence.timeout", p.Timeout, 1, 2*p.ReprobeInterval.Duration, 7*maxLongDuration); err != nil {
		return err
	}
	if p.MaxEntries < 1 || p.MaxEntries > MaxPresenceEntries {
		return fieldErr("presence.max_entries", "%d is out of range (1..%d)", p.MaxEntries, MaxPresenceEntries)
	}
	if p.MaxBytes < MinPresenceBytes || p.MaxBytes > MaxPresenceBytes {
		return fieldErr("presence.max_bytes", "%d is out of range (%d..%d)", p.MaxBytes, MinPresenceBytes, int64(MaxPresenceBytes))
	}
	if p.StateFile != "" && (filepath.IsAbs(p.StateFile) || strings.Contains(p.StateFile, "..")) {
		return fieldErr("presence.state_file", "%q: give a file name inside state_dir", p.StateFile)
	}
	return nil
}

func (c *Config) validateTop() error {
	switch {
	case c.Name == "":
		return fieldErr("name", "required (a short name for this gateway, used in logs and metrics)")
	case len(c.Name) > MaxNameLength:
		return fieldErr("name", "%q is longer than %d bytes", c.Name, MaxNameLength)
	}
	for _, r := range c.Name {
		if !(r == '-' || r == '_' || r == '.' || r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return fieldErr("name", "%q: use only ASCII letters, digits, '-', '_' and '.'", c.Name)
		}
	}
	if c.StateDir == "" {
		return fieldErr("state_dir", "must not be empty")
	}
	if c.AdminListen != "" {
		if err := checkAddr(c.AdminListen, true); err != nil {
			return fieldErr("admin_listen", "%v", err)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fieldErr("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	return checkDuration("summary_interval", c.SummaryInterval, 0, time.Second, maxLongDuration)
}

func (c *Config) validateDomains() error {
	if len(c.LocalDomains) == 0 {
		return fieldErr("local_domains", "at least one local domain is required ([local_domains] \"example.org\" = \"127.0.0.1:5269\")")
	}
	for _, d := range slices.Sorted(maps.Keys(c.LocalDomains)) {
		key := "local_domains." + quoteKey(d)
		if err := checkDomain(d); err != nil {
			return fieldErr(key, "%v", err)
		}
		if err := checkAddr(c.LocalDomains[d], false); err != nil {
			return fieldErr(key, "%v", err)
		}
	}
	if len(c.RemoteDomains) == 0 {
		return fieldErr("remote_domains", "at least one remote domain is required")
	}
	seen := map[string]bool{}
	for _, d := range c.RemoteDomains {
		if err := checkDomain(d); err != nil {
			return fieldErr("remote_domains", "%v", err)
		}
		if seen[d] {
			return fieldErr("remote_domains", "%q is listed twice", d)
		}
		seen[d] = true
		if _, ok := c.LocalDomains[d]; ok {
			return fieldErr("remote_domains", "%q is also a local domain", d)
		}
	}
	return nil
}

func (l *Link) validate(s Supplied) error {
	if l.Listen == "" && l.Dial == "" && !s.LinkDial && !s.LinkListener {
		return fieldErr("link", "set link.listen, link.dial or both")
	}
	if l.Listen != "" {
		if err := checkAddr(l.Listen, true); err != nil {
			return fieldErr("link.listen", "%v", err)
		}
	}
	if l.Dial != "" {
		if err := checkAddr(l.Dial, false); err != nil {
			return fieldErr("link.dial", "%v", err)
		}
	}
	switch l.Transport {
	case "tcp", "quic", "datagram":
	default:
		return fieldErr("link.transport", "%q is not a transport (use \"tcp\", \"quic\" or \"datagram\")", l.Transport)
	}
	if l.KeyFile == "" && !s.PrivateKey {
		return fieldErr("link.key_file", "required (create a key with `isthmus keygen`)")
	}
	if l.PeerKey == "" {
		return fieldErr("link.peer_key", "required (the public key `isthmus keygen` printed on the peer)")
	}
	if _, err := linkkey.ParsePublicKey(l.PeerKey); err != nil {
		return fieldErr("link.peer_key", "%v", err)
	}
	if l.RateBPS != 0 && (l.RateBPS < MinRateBPS || l.RateBPS > MaxRateBPS) {
		return fieldErr("link.rate_bps", "%d is out of range (0 = unpaced, or %d..%d bit/s)", l.RateBPS, MinRateBPS, int64(MaxRateBPS))
	}
	if err := checkDuration("link.batch_window", l.BatchWindow, 0, 0, MaxBatchWindow); err != nil {
		return err
	}
	if err := checkDuration("link.presence_window", l.PresenceWindow, 0, 0, MaxPresenceWindow); err != nil {
		return err
	}
	if l.MaxBatchBytes < MinBatchBytes || l.MaxBatchBytes > MaxBatchBytes {
		return fieldErr("link.max_batch_bytes", "%d is out of range (%d..%d)", l.MaxBatchBytes, MinBatchBytes, MaxBatchBytes)
	}
	if err := checkDuration("link.keepalive", l.Keepalive, 0, time.Second, maxLongDuration); err != nil {
		return err
	}
	if err := checkDuration("link.reconnect_min", l.ReconnectMin, -1, 10*time.Millisecond, time.Hour); err != nil {
		return err
	}
	if err := checkDuration("link.reconnect_max", l.ReconnectMax, -1, 10*time.Millisecond, maxLongDuration); err != nil {
		return err
	}
	if l.ReconnectMax.Duration < l.ReconnectMin.Duration {
		return fieldErr("link.reconnect_max", "%v is less than link.reconnect_min (%v)", l.ReconnectMax.Duration, l.ReconnectMin.Duration)
	}
	if l.SpoolMaxBytes < MinSpoolBytes || l.SpoolMaxBytes > MaxSpoolBytes {
		return fieldErr("link.spool_max_bytes", "%d is out of range (%d..%d)", l.SpoolMaxBytes, MinSpoolBytes, int64(MaxSpoolBytes))
	}
	if err := checkDuration("link.probe_max", l.ProbeMax, -1, time.Second, 10*time.Minute); err != nil {
		return err
	}
	if l.SenderMaxBytes != 0 && (l.SenderMaxBytes < 1024 || l.SenderMaxBytes > l.SpoolMaxBytes) {
		return fieldErr("link.sender_max_bytes", "%d is out of range (1024..link.spool_max_bytes = %d; 0: a quarter of it)", l.SenderMaxBytes, l.SpoolMaxBytes)
	}
	switch l.SpoolSync {
	case "batch", "always", "none", "off":
	default:
		return fieldErr("link.spool_sync", "%q is not one of batch, always, none, off", l.SpoolSync)
	}
	if l.LearnDictBytes != 0 && (l.LearnDictBytes < MinLearnDictBytes || l.LearnDictBytes > MaxLearnDictBytes) {
		return fieldErr("link.learn_dict_bytes", "%d is out of range (0 = off, or %d..%d)", l.LearnDictBytes, MinLearnDictBytes, MaxLearnDictBytes)
	}
	return checkDuration("link.max_age", l.MaxAge, -1, time.Second, 30*maxLongDuration)
}

func (s *S2S) validate() error {
	if err := checkAddr(s.Listen, true); err != nil {
		return fieldErr("s2s.listen", "%v", err)
	}
	if s.DialbackSecret == "" {
		return fieldErr("s2s.dialback_secret", "required (a random string of at least %d characters)", MinSecretLength)
	}
	if n := len([]rune(s.DialbackSecret)); n < MinSecretLength {
		return fieldErr("s2s.dialback_secret", "is %d characters, want at least %d", n, MinSecretLength)
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		if s.CertFile == "" {
			return fieldErr("s2s.key_file", "is set without s2s.cert_file (set both or neither)")
		}
		return fieldErr("s2s.cert_file", "is set without s2s.key_file (set both or neither)")
	}
	if s.MaxStanzaSize < MinStanzaSize || s.MaxStanzaSize > MaxStanzaSize {
		return fieldErr("s2s.max_stanza_size", "%d is out of range (%d..%d)", s.MaxStanzaSize, MinStanzaSize, MaxStanzaSize)
	}
	if err := checkDuration("s2s.connect_timeout", s.ConnectTimeout, -1, time.Second, time.Hour); err != nil {
		return err
	}
	if err := checkDuration("s2s.keepalive", s.Keepalive, 0, time.Second, maxLongDuration); err != nil {
		return err
	}
	if err := checkDuration("s2s.idle_timeout", s.IdleTimeout, 0, time.Second, 7*maxLongDuration); err != nil {
		return err
	}
	if s.QueueLimit < 1 || s.QueueLimit > MaxQueueLimit {
		return fieldErr("s2s.queue_limit", "%d is out of range (1..%d)", s.QueueLimit, MaxQueueLimit)
	}
	return s.validateLimits()
}

// Bounds of the [s2s] input limits.
const (
	MinDepth, MaxDepth           = 4, 1024
	MinAttributes, MaxAttributes = 8, 4096
	MinTextSize                  = 256
	MaxConnsPerAddress           = 100_000
	MaxStanzaRate                = 1_000_000
)

func (s *S2S) validateLimits() error {
	if s.MaxDepth < MinDepth || s.MaxDepth > MaxDepth {
		return fieldErr("s2s.max_depth", "%d is out of range (%d..%d)", s.MaxDepth, MinDepth, MaxDepth)
	}
	if s.MaxAttributes < MinAttributes || s.MaxAttributes > MaxAttributes {
		return fieldErr("s2s.max_attributes", "%d is out of range (%d..%d)", s.MaxAttributes, MinAttributes, MaxAttributes)
	}
	if s.MaxTextSize < MinTextSize || s.MaxTextSize > MaxStanzaSize { // above max_stanza_size it is that
		return fieldErr("s2s.max_text_size", "%d is out of range (%d..%d)", s.MaxTextSize, MinTextSize, MaxStanzaSize)
	}
	if s.MaxConnsPerAddress < 0 || s.MaxConnsPerAddress > MaxConnsPerAddress {
		return fieldErr("s2s.max_conns_per_address", "%d is out of range (0 = off, or 1..%d)", s.MaxConnsPerAddress, MaxConnsPerAddress)
	}
	if !(s.StanzaRate >= 0 && s.StanzaRate <= MaxStanzaRate) { // also NaN
		return fieldErr("s2s.stanza_rate", "%v is out of range (0 = off, or up to %d stanzas/s)", s.StanzaRate, MaxStanzaRate)
	}
	if s.StanzaBurst < 1 || s.StanzaBurst > MaxQueueLimit {
		return fieldErr("s2s.stanza_burst", "%d is out of range (1..%d)", s.StanzaBurst, MaxQueueLimit)
	}
	for _, a := range s.AllowFrom {
		if _, err := ParsePrefix(a); err != nil {
			return fieldErr("s2s.allow_from", "%v", err)
		}
	}
	if s.RequireTLS && s.CertFile == "" {
		return fieldErr("s2s.require_tls", "needs s2s.cert_file and s2s.key_file (STARTTLS must be offered to be required)")
	}
	if s.CAFile != "" && (strings.TrimSpace(s.CAFile) != s.CAFile || strings.HasSuffix(s.CAFile, "/")) {
		return fieldErr("s2s.ca_file", "%q: give the path of a PEM file (no surrounding spaces, not a directory)", s.CAFile)
	}
	return nil
}

// ParsePrefix parses one s2s.allow_from entry: an IP address ("10.0.0.5",
// "::1") or a CIDR prefix ("10.0.0.0/24").
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// checkDuration checks lo <= d <= hi. zero is 0 when zero means off (and is
// allowed), -1 when it is not allowed.
func checkDuration(key string, d Duration, zero int, lo, hi time.Duration) error {
	v := d.Duration
	switch {
	case v < 0:
		return fieldErr(key, "%v is negative", v)
	case v == 0 && zero == 0:
		return nil
	case v == 0:
		return fieldErr(key, "must be more than 0 (%v..%v)", lo, hi)
	case v < lo || v > hi:
		if zero == 0 {
			return fieldErr(key, "%v is out of range (0 = off, or %v..%v)", v, lo, hi)
		}
		return fieldErr(key, "%v is out of range (%v..%v)", v, lo, hi)
	}
	return nil
}

// checkDomain checks that d is a domain name in canonical form (as a JID
// domainpart: lowercase, no trailing dot).
func checkDomain(d string) error {
	j, err := jid.Parse(d)
	if err != nil {
		return fmt.Errorf("%q is not a valid domain: %w", d, err)
	}
	if j.Localpart() != "" || j.Resourcepart() != "" {
		return fmt.Errorf("%q is not a domain (a bare domain such as \"example.org\", not a JID)", d)
	}
	if j.String() != d {
		return fmt.Errorf("%q is not in canonical form; write %q", d, j.String())
	}
	if !strings.HasPrefix(d, "[") { // not an IPv6 literal
		for _, label := range strings.Split(d, ".") {
			if label == "" {
				return fmt.Errorf("%q is not a valid domain: empty label", d)
			}
			if len(label) > 63 {
				return fmt.Errorf("%q is not a valid domain: label longer than 63 bytes", d)
			}
		}
	}
	return nil
}

// checkAddr checks a "host:port" address. Listen addresses may leave the host
// empty (all interfaces) and use port 0 (any free port).
func checkAddr(addr string, listen bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if host == "" && !listen {
		return fmt.Errorf("%q has no host", addr)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("%q: port %q is not a number 1..65535", addr, port)
	}
	if p == 0 && !listen {
		return fmt.Errorf("%q: port 0 is only allowed for listen addresses", addr)
	}
	return nil
}

// quoteKey spells one key piece as toml.Key.String does.
func quoteKey(p string) string {
	return tomlKeyString([]string{p})
}
