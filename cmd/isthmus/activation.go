package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/isthmus-xmpp/isthmus/gateway"
	"github.com/isthmus-xmpp/isthmus/gateway/config"
)

// Socket activation (sd_listen_fds(3)): systemd opens the listening sockets
// and passes them to the process as file descriptors 3, 4, … with
// LISTEN_FDS (how many), LISTEN_PID (for which process) and LISTEN_FDNAMES
// (their FileDescriptorName=, colon-separated). The sockets belong to
// systemd: while the gateway restarts they stay open, and connections made
// meanwhile wait in the kernel's accept queue for the next process instead
// of being refused.

// listenFDsStart is the first passed file descriptor (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// inherited is one listening socket passed by systemd.
type inherited struct {
	name string // its FileDescriptorName ("" when systemd gave none)
	ln   net.Listener
}

// systemdListeners returns the listening sockets passed to this process, or
// none when LISTEN_PID names another process (or is unset). It clears the
// three variables so that child processes do not take the sockets for
// theirs.
func systemdListeners() ([]inherited, error) {
	pid, nfds, names := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	if pid == "" || nfds == "" {
		return nil, nil
	}
	if p, err := strconv.Atoi(pid); err != nil || p != os.Getpid() {
		return nil, nil // meant for another process
	}
	n, err := strconv.Atoi(nfds)
	if err != nil || n < 0 || n > 64 {
		return nil, fmt.Errorf("socket activation: LISTEN_FDS=%q is not a count of file descriptors", nfds)
	}
	var nameList []string
	if names != "" {
		nameList = strings.Split(names, ":")
	}
	var out []inherited
	for i := range n {
		fd := listenFDsStart + i
		name := ""
		if i < len(nameList) && nameList[i] != "unknown" {
			name = nameList[i]
		}
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd))
		ln, err := net.FileListener(f)
		f.Close() // FileListener made its own copy
		if err != nil {
			for _, l := range out {
				l.ln.Close()
			}
			return nil, fmt.Errorf("socket activation: file descriptor %d (%q): not a listening stream socket: %w", fd, name, err)
		}
		out = append(out, inherited{name: name, ln: ln})
	}
	return out, nil
}

// useInherited puts the inherited sockets in place of the listeners the
// gateway would open: by FileDescriptorName ("s2s", "link", "admin"), or,
// for an unnamed socket, by its address against s2s.listen, link.listen and
// admin_listen. A socket that matches none is an error, as is one for a
// listener the configuration does not have.
func useInherited(ls []inherited, cfg *config.Config, opts *gateway.Options) ([]string, error) {
	var used []string
	for _, l := range ls {
		role := l.name
		if role == "" {
			switch a := l.ln.Addr(); {
			case sameAddr(a, cfg.S2S.Listen):
				role = "s2s"
			case sameAddr(a, cfg.Link.Listen):
				role = "link"
			case sameAddr(a, cfg.AdminListen):
				role = "admin"
			}
		}
		var err error
		switch role {
		case "s2s":
			opts.S2SListener = l.ln
		case "link":
			switch {
			case cfg.Link.Listen == "":
				err = fmt.Errorf("socket activation: socket %q (%s) is for the link, but link.listen is not set (this gateway dials)", role, l.ln.Addr())
			case cfg.Link.Transport == "quic":
				err = fmt.Errorf("socket activation: socket %q (%s): a stream socket for a QUIC link", role, l.ln.Addr())
			default:
				opts.LinkListener = noKeepalive{l.ln}
			}
		case "admin":
			if cfg.AdminListen == "" {
				err = fmt.Errorf("socket activation: socket %q (%s) is for admin_listen, which is not set", role, l.ln.Addr())
			}
			opts.AdminListener = l.ln
		default:
			err = fmt.Errorf("socket activation: socket %q (%s) matches none of s2s.listen, link.listen, admin_listen (name it s2s, link or admin with FileDescriptorName=)", l.name, l.ln.Addr())
		}
		if err != nil {
			for _, l := range ls {
				l.ln.Close()
			}
			return nil, err
		}
		used = append(used, role+"="+l.ln.Addr().String())
	}
	return used, nil
}

// sameAddr reports whether the listener address a is the configured
// address s (an unspecified IP matches any unspecified IP).
func sameAddr(a net.Addr, s string) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok || s == "" {
		return false
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || port != strconv.Itoa(ta.Port) {
		return false
	}
	ip := net.ParseIP(host)
	if host == "" || (ip != nil && ip.IsUnspecified()) {
		return ta.IP.IsUnspecified()
	}
	return ip != nil && ip.Equal(ta.IP)
}

// noKeepalive turns the kernel's TCP keepalive off on accepted link
// connections, as link.ListenTCP does for a socket the gateway opens itself
// (its probes would cost more than the session's own keepalive).
type noKeepalive struct{ net.Listener }

func (l noKeepalive) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetKeepAlive(false)
	}
	return c, err
}
