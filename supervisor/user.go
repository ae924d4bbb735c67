package supervisor

import (
	"fmt"
	"os/user"
	"strconv"
	"strings"
)

// Credential is the identity a process runs as. Supplementary groups are always dropped (README "Signals").
type Credential struct {
	UID, GID uint32
	Home     string // from the passwd entry; "" when given numerically and unknown
	Name     string // user name, "" when given numerically and unknown
}

// LookupUser resolves "name", "uid", "name:group", "uid:gid" (names through /etc/passwd and /etc/group; berth
// is static, so this is Go's pure-Go parser, no NSS). A bare uid that has no passwd entry is accepted with
// gid = uid's entry or, failing that, the same number — what `docker run --user 1000` does.
func LookupUser(spec string) (*Credential, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, fmt.Errorf("empty user")
	}
	name, group, hasGroup := strings.Cut(spec, ":")
	c := &Credential{}
	if uid, err := strconv.ParseUint(name, 10, 32); err == nil {
		c.UID = uint32(uid)
		c.GID = uint32(uid)
		if u, err := user.LookupId(name); err == nil {
			c.Home, c.Name = u.HomeDir, u.Username
			if gid, err := strconv.ParseUint(u.Gid, 10, 32); err == nil {
				c.GID = uint32(gid)
			}
		}
	} else {
		u, err := user.Lookup(name)
		if err != nil {
			return nil, fmt.Errorf("unknown user %q", name)
		}
		uid, err := strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("user %q: bad uid %q", name, u.Uid)
		}
		gid, err := strconv.ParseUint(u.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("user %q: bad gid %q", name, u.Gid)
		}
		c.UID, c.GID, c.Home, c.Name = uint32(uid), uint32(gid), u.HomeDir, u.Username
	}
	if hasGroup {
		if gid, err := strconv.ParseUint(group, 10, 32); err == nil {
			c.GID = uint32(gid)
		} else {
			g, err := user.LookupGroup(group)
			if err != nil {
				return nil, fmt.Errorf("unknown group %q", group)
			}
			n, err := strconv.ParseUint(g.Gid, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("group %q: bad gid %q", group, g.Gid)
			}
			c.GID = uint32(n)
		}
	}
	return c, nil
}
