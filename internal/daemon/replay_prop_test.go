package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"pgregory.net/rapid"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
)

// For random sequences of user actions and machine crashes, the snapshot the
// live daemon serves equals, byte for byte, the replay of its exported log
// up to the same seq.
func TestLiveSnapshotEqualsReplayProperty(t *testing.T) {
	td := startDaemon(t, testPaths(t), &fakeDriver{})
	ctx := context.Background()
	rapid.Check(t, func(rt *rapid.T) {
		steps := rapid.IntRange(1, 6).Draw(rt, "steps")
		for i := 0; i < steps; i++ {
			switch rapid.IntRange(0, 4).Draw(rt, "action") {
			case 0:
				_, _ = td.cli.Set(ctx, api.SetRequest{Set: map[string]string{"running": rapid.SampledFrom([]string{"true", "false"}).Draw(rt, "running")}})
			case 1:
				_, _ = td.cli.Set(ctx, api.SetRequest{Set: map[string]string{"containerEngine.name": rapid.SampledFrom([]string{"moby", "containerd"}).Draw(rt, "engine")}})
			case 2:
				_, _ = td.cli.Set(ctx, api.SetRequest{Set: map[string]string{"kubernetes.enabled": rapid.SampledFrom([]string{"true", "false"}).Draw(rt, "k8s")}})
			case 3:
				_ = td.drv.crash()
			case 4:
				// A rejected change must leave no trace.
				_, _ = td.cli.Set(ctx, api.SetRequest{Set: map[string]string{"running": "maybe"}})
			}
		}
		live, err := td.cli.RawStatus(ctx)
		if err != nil {
			rt.Fatal(err)
		}
		var snap events.Snapshot
		if err := json.Unmarshal(live, &snap); err != nil {
			rt.Fatal(err)
		}
		var envs []events.Envelope
		err = td.cli.Events(ctx, api.EventQuery{}, func(raw []byte, _ events.Envelope) error {
			e, err := events.Unmarshal(raw)
			if err != nil {
				return err
			}
			if e.Seq <= snap.Seq {
				envs = append(envs, e)
			}
			return nil
		})
		if err != nil {
			rt.Fatal(err)
		}
		replayed, err := events.Replay(envs)
		if err != nil {
			rt.Fatal(err)
		}
		got, _ := json.Marshal(replayed)
		if !bytes.Equal(bytes.TrimSpace(live), got) {
			rt.Fatalf("replay of %d events differs from the live snapshot\nlive:   %s\nreplay: %s", len(envs), live, got)
		}
		// The past too: status --at any seq equals the replay of the log up to it.
		at := rapid.Uint64Range(1, snap.Seq).Draw(rt, "at")
		past, err := td.cli.StatusAt(ctx, api.At{Seq: at})
		if err != nil {
			rt.Fatal(err)
		}
		want, err := events.Replay(envs[:at])
		if err != nil {
			rt.Fatal(err)
		}
		a, _ := json.Marshal(past)
		b, _ := json.Marshal(want)
		if !bytes.Equal(a, b) {
			rt.Fatalf("status at seq %d differs from the replay up to it\nat:     %s\nreplay: %s", at, a, b)
		}
	})
}
