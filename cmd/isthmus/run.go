package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/isthmus-xmpp/isthmus/gateway"
	"github.com/isthmus-xmpp/isthmus/gateway/config"
)

func init() {
	register("run", "run a gateway from its configuration file", runGateway)
}

// runGateway runs one gateway until SIGTERM or SIGINT.
//
// SIGTERM/SIGINT: stop accepting S2S connections, wait up to -drain for the
// link to carry and have acknowledged what is queued (what is left stays in
// the spool for the next start), then stop the link (nothing more is read
// from the peer), write what local servers are owed and close the S2S
// streams cleanly: </stream:stream>, reading on until the server's own
// close, so every stanza it sent is spooled. Exit status 0. A second signal
// cuts the drain short.
//
// Socket activation: listening sockets passed by systemd (LISTEN_FDS, see
// activation.go) are used instead of opening s2s.listen, link.listen or
// admin_listen; they stay open across a restart, so local servers and the
// peer are never refused (deploy/isthmus-s2s@.socket).
//
// SIGHUP: read the configuration file again and apply the settings that are
// safe to change while running (log_level, summary_interval, link.rate_bps);
// changes to other keys are logged as needing a restart. An invalid file is
// logged and ignored.
func runGateway(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	drain := fs.Duration("drain", 10*time.Second, "on SIGTERM, wait this long for the link to deliver what is queued")
	logJSON := fs.Bool("log-json", false, "write logs as JSON lines instead of key=value text")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: isthmus run [-drain 10s] [-log-json] CONFIG.toml")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	path := fs.Arg(0)
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	var level slog.LevelVar
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("log_level %q: %w", cfg.LogLevel, err)
	}
	hopts := &slog.HandlerOptions{Level: &level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, hopts)
	if *logJSON {
		h = slog.NewJSONHandler(os.Stderr, hopts)
	}
	logger := slog.New(h)
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	opts := gateway.Options{Logger: logger}
	ls, err := systemdListeners()
	if err != nil {
		return err
	}
	used, err := useInherited(ls, cfg, &opts)
	if err != nil {
		return err
	}
	if len(used) > 0 {
		logger.Info("isthmus: listening on sockets passed by systemd", "sockets", used)
	}
	g, err := gateway.New(cfg, opts)
	if err != nil {
		for _, l := range ls {
			l.ln.Close()
		}
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	logger.Info("isthmus: running", "config", path, "s2s", g.S2SAddr().String(), "admin", cfg.AdminListen, "pid", os.Getpid())
	for {
		select {
		case err := <-done:
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(logger, &level, g, path)
				continue
			}
			logger.Info("isthmus: shutting down: no new S2S connections, draining the link", "signal", sig.String(), "drain", *drain)
			dctx, cancel := context.WithTimeout(ctx, *drain)
			go func() { // a second signal cuts the drain short
				select {
				case <-sigs:
					cancel()
				case <-dctx.Done():
				}
			}()
			left := g.Drain(dctx)
			cancel()
			if left > 0 {
				logger.Warn("isthmus: stopping with stanzas not yet acknowledged by the peer (they stay in the spool)", "stanzas", left)
			}
			stop()
			err := <-done
			logger.Info("isthmus: stopped")
			return err
		}
	}
}

func reload(logger *slog.Logger, level *slog.LevelVar, g *gateway.Gateway, path string) {
	cfg, err := config.Load(path)
	if err != nil {
		logger.Error("isthmus: reload: configuration not applied", "err", err)
		return
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		logger.Error("isthmus: reload: configuration not applied", "err", fmt.Errorf("log_level %q: %w", cfg.LogLevel, err))
		return
	}
	level.Set(lv)
	r := g.Reload(cfg)
	if len(r.NeedRestart) > 0 {
		logger.Warn("isthmus: reload: these changes need a restart", "keys", r.NeedRestart)
	}
	logger.Info("isthmus: reloaded", "config", path, "applied", r.Applied)
}
