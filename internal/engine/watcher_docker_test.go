package engine

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/volume"
	"go.uber.org/zap/zaptest"

	"github.com/rdd-project/rdd/internal/dockertest"
)

// Integration tests against a private dockerd (internal/dockertest).

const waitTimeout = 30 * time.Second

func startWatcher(t *testing.T, host string, opts WatcherOptions) (*Watcher, *phaseLog) {
	t.Helper()
	pl := newPhaseLog()
	opts.OnPhase = pl.on
	w := NewWatcher(host, zaptest.NewLogger(t), opts)
	stop := w.Start(context.Background())
	t.Cleanup(stop)
	return w, pl
}

// waitInventory waits, without polling, until cond holds for the inventory.
func waitInventory(t *testing.T, inv *Inventory, what string, cond func(*Inventory) bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		ch := inv.Changed()
		if cond(inv) {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			b, _ := json.MarshalIndent(map[string]any{"containers": inv.Containers(), "images": inv.Images(), "volumes": inv.Volumes()}, "", "  ")
			t.Fatalf("timed out waiting for %s; inventory:\n%s", what, b)
		}
	}
}

func findContainer(inv *Inventory, name string) (Container, bool) {
	for _, c := range inv.Containers() {
		if c.Name == name {
			return c, true
		}
	}
	return Container{}, false
}

func hasVolume(inv *Inventory, name string) bool {
	for _, v := range inv.Volumes() {
		if v.Name == name {
			return true
		}
	}
	return false
}

func imageTags(inv *Inventory) map[string]string {
	m := map[string]string{}
	for _, im := range inv.Images() {
		m[im.RepoTag] = im.ID
	}
	return m
}

func mustPhase(t *testing.T, pl *phaseLog, want PhaseState) Phase {
	t.Helper()
	ph, err := pl.next(want, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return ph
}

func TestDockerWatcherSyncAndEvents(t *testing.T) {
	d := dockertest.Start(t)
	ref := dockertest.ImportBusybox(t, d)
	cli := dockertest.Client(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if _, err := dockertest.CreateContainer(ctx, cli, ref, "pre-stopped", "true"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: "pre-vol"}); err != nil {
		t.Fatal(err)
	}

	w, pl := startWatcher(t, d.Host, WatcherOptions{})
	ph := mustPhase(t, pl, PhaseConnected)
	if ph.Counts != (Counts{Containers: 1, Images: 1, Volumes: 1}) {
		t.Fatalf("counts after sync = %+v", ph.Counts)
	}
	if ph.APIVersion == "" || ph.EngineVersion == "" {
		t.Fatalf("versions missing: %+v", ph)
	}
	inv := w.Inventory()
	if c, ok := findContainer(inv, "pre-stopped"); !ok || c.State != "created" || c.Image != ref || len(c.ID) != 64 {
		t.Fatalf("pre-stopped = %+v (found %v)", c, ok)
	}

	// Container lifecycle through events.
	id, err := dockertest.CreateContainer(ctx, cli, ref, "c2", "sleep", "1000")
	if err != nil {
		t.Fatal(err)
	}
	waitInventory(t, inv, "c2 created", func(inv *Inventory) bool { c, ok := findContainer(inv, "c2"); return ok && c.State == "created" })
	if err := cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitInventory(t, inv, "c2 running", func(inv *Inventory) bool { c, ok := findContainer(inv, "c2"); return ok && c.State == "running" })
	if err := cli.ContainerRename(ctx, id, "c2-renamed"); err != nil {
		t.Fatal(err)
	}
	waitInventory(t, inv, "c2 renamed", func(inv *Inventory) bool {
		_, old := findContainer(inv, "c2")
		_, ok := findContainer(inv, "c2-renamed")
		return ok && !old
	})
	timeout := 0
	if err := cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	waitInventory(t, inv, "c2 exited", func(inv *Inventory) bool { c, ok := findContainer(inv, "c2-renamed"); return ok && c.State == "exited" })
	if err := cli.ContainerRemove(ctx, id, container.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	waitInventory(t, inv, "c2 removed", func(inv *Inventory) bool { _, ok := findContainer(inv, "c2-renamed"); return !ok })

	// Volumes: names keep case and underscores.
	if _, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: "Vol_Upper"}); err != nil {
		t.Fatal(err)
	}
	waitInventory(t, inv, "volume created", func(inv *Inventory) bool { return hasVolume(inv, "Vol_Upper") })
	if err := cli.VolumeRemove(ctx, "Vol_Upper", false); err != nil {
		t.Fatal(err)
	}
	waitInventory(t, inv, "volume removed", func(inv *Inventory) bool { return !hasVolume(inv, "Vol_Upper") })

	// Images: one entry per tag.
	if err := cli.ImageTag(ctx, ref, "rdd-extra:v1"); err != nil {
		t.Fatal(err)
	}
	waitInventory(t, inv, "second tag", func(inv *Inventory) bool {
		m := imageTags(inv)
		return len(m) == 2 && m["rdd-extra:v1"] != "" && m["rdd-extra:v1"] == m[ref]
	})
	if _, err := cli.ImageRemove(ctx, "rdd-extra:v1", image.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	waitInventory(t, inv, "tag removed", func(inv *Inventory) bool { m := imageTags(inv); return len(m) == 1 && m[ref] != "" })

	// The JSON served by GET /v1/engine/*.
	b, err := json.Marshal(inv.Containers())
	if err != nil || !strings.Contains(string(b), `"name":"pre-stopped"`) || !strings.Contains(string(b), `"state":"created"`) {
		t.Fatalf("containers JSON %s (%v)", b, err)
	}
}

// TestDockerWatcherReconnect kills dockerd under a connected watcher, then
// restarts it on the same socket.
func TestDockerWatcherReconnect(t *testing.T) {
	d := dockertest.Start(t)
	ref := dockertest.ImportBusybox(t, d)
	cli := dockertest.Client(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := dockertest.CreateContainer(ctx, cli, ref, "runner", "sleep", "1000")
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}

	w, pl := startWatcher(t, d.Host, WatcherOptions{})
	mustPhase(t, pl, PhaseConnected)
	if c, _ := findContainer(w.Inventory(), "runner"); c.State != "running" {
		t.Fatalf("runner = %+v", c)
	}

	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	ph := mustPhase(t, pl, PhaseDisconnected)
	if ph.Err == nil || ph.RetryIn > BackoffMax {
		t.Fatalf("disconnected phase %+v", ph)
	}
	ph = mustPhase(t, pl, PhaseConnectFailed)
	if !strings.HasPrefix(ph.Err.Error(), "failed to ping Docker: ") {
		t.Fatalf("connect failed with %v", ph.Err)
	}
	if len(w.Inventory().Containers()) != 1 {
		t.Fatal("inventory emptied while reconnecting; it should keep its content until the next sync")
	}

	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	ph = mustPhase(t, pl, PhaseConnected)
	if ph.Counts.Containers != 1 {
		t.Fatalf("counts after reconnect %+v", ph.Counts)
	}
	// dockerd stops the containers it finds running after a crash; the
	// fresh sync (or the stream) must show that.
	waitInventory(t, w.Inventory(), "runner exited", func(inv *Inventory) bool { c, _ := findContainer(inv, "runner"); return c.State == "exited" })
	// The new stream works.
	if _, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: "after-restart"}); err != nil {
		t.Fatal(err)
	}
	waitInventory(t, w.Inventory(), "volume after restart", func(inv *Inventory) bool { return hasVolume(inv, "after-restart") })
}

// TestDockerWatcherCursorBeforeSync creates objects after the full sync
// has listed everything and before the event stream opens: they were not
// in the lists, so only the replay from the cursor taken before the sync
// can bring them in.
func TestDockerWatcherCursorBeforeSync(t *testing.T) {
	d := dockertest.Start(t)
	ref := dockertest.ImportBusybox(t, d)
	cli := dockertest.Client(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var once sync.Once
	hookErr := make(chan error, 1)
	w, pl := startWatcher(t, d.Host, WatcherOptions{afterSync: func() {
		once.Do(func() {
			_, err := dockertest.CreateContainer(ctx, cli, ref, "during-sync", "true")
			if err == nil {
				_, err = cli.VolumeCreate(ctx, volume.CreateOptions{Name: "during-sync"})
			}
			hookErr <- err
		})
	}})
	ph := mustPhase(t, pl, PhaseConnected)
	if err := <-hookErr; err != nil {
		t.Fatal(err)
	}
	if ph.Counts.Containers != 0 || ph.Counts.Volumes != 0 {
		t.Fatalf("the sync already saw the objects: %+v", ph.Counts)
	}
	waitInventory(t, w.Inventory(), "objects created during the sync", func(inv *Inventory) bool {
		_, ok := findContainer(inv, "during-sync")
		return ok && hasVolume(inv, "during-sync")
	})
}

// TestWatcherNoEngine: nothing listens on the socket.
func TestWatcherNoEngine(t *testing.T) {
	host := "unix://" + filepath.Join(t.TempDir(), "docker.sock")
	w, pl := startWatcher(t, host, WatcherOptions{})
	ph := mustPhase(t, pl, PhaseConnectFailed)
	if !strings.HasPrefix(ph.Err.Error(), "failed to ping Docker: ") || ph.RetryIn != BackoffInitial {
		t.Fatalf("phase %+v", ph)
	}
	if w.Host() != host {
		t.Fatalf("Host() = %q", w.Host())
	}
}
