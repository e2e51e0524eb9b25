package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/rdd-project/rdd/internal/api"
)

// parsePoint reads a point of the event log for --at and --since: an event
// seq, a duration meaning that long before now ("5m"), or an RFC 3339 time.
// Seq 0 is returned as such; callers decide whether it means anything.
func parsePoint(flag, s string, now time.Time) (api.At, error) {
	if seq, err := strconv.ParseUint(s, 10, 64); err == nil {
		return api.At{Seq: seq}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return api.At{}, fmt.Errorf("invalid %s %q: a duration counts back from now and must be positive", flag, s)
		}
		return api.At{Time: now.Add(-d)}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return api.At{Time: t}, nil
	}
	return api.At{}, fmt.Errorf("invalid %s %q: want an event seq (42), a duration ago (5m, 2h) or an RFC 3339 time (2026-11-26T12:00:00Z)", flag, s)
}
