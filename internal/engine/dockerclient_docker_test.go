package engine

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/volume"

	"github.com/rdd-project/rdd/internal/dockertest"
)

// TestDockerClientAgainstDockerd runs dockerClient against a private
// dockerd and compares its answers with those of Docker's client
// (dockertest.Client), which decodes the same JSON into the same types.
// The subtests share the daemon and run in order.
func TestDockerClientAgainstDockerd(t *testing.T) {
	d := dockertest.Start(t)
	ref := dockertest.ImportBusybox(t, d)
	dc := dockertest.Client(t, d)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cli := mustClient(t, d.Host)

	t.Run("ping and negotiation", func(t *testing.T) {
		p, err := cli.Ping(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p.APIVersion == "" || p.OSType != "linux" {
			t.Fatalf("ping = %+v", p)
		}
		cli.NegotiateAPIVersionPing(p)
		want := p.APIVersion
		if apiVersionAtLeast(want, maxAPIVersion) {
			want = maxAPIVersion
		}
		if v := cli.ClientVersion(); v != want || !apiVersionAtLeast(v, minAPIVersion) {
			t.Fatalf("ClientVersion = %q with a daemon at %q", v, p.APIVersion)
		}
		info, err := cli.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sv, err := dc.ServerVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.ServerVersion != sv.Version {
			t.Fatalf("Info.ServerVersion = %q, want %q", info.ServerVersion, sv.Version)
		}
		if _, err := time.Parse(time.RFC3339Nano, info.SystemTime); err != nil {
			t.Fatalf("SystemTime: %v", err)
		}
	})

	t.Run("containers", func(t *testing.T) {
		id, err := dockertest.CreateContainer(ctx, dc, ref, "cli-created", "true")
		if err != nil {
			t.Fatal(err)
		}
		all, err := cli.ContainerList(ctx, container.ListOptions{All: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 1 || all[0].ID != id || all[0].State != container.StateCreated || !slices.Equal(all[0].Names, []string{"/cli-created"}) {
			t.Fatalf("all containers = %+v", all)
		}
		want, err := dc.ContainerList(ctx, container.ListOptions{All: true})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(all, want) {
			t.Fatalf("ContainerList differs from Docker's client:\n got %+v\nwant %+v", all, want)
		}
		running, err := cli.ContainerList(ctx, container.ListOptions{})
		if err != nil || len(running) != 0 {
			t.Fatalf("running containers = %+v, %v", running, err)
		}
		for _, f := range []filters.Args{filters.NewArgs(filters.Arg("id", id)), filters.NewArgs(filters.Arg("name", "cli-created"))} {
			got, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
			if err != nil || len(got) != 1 || got[0].ID != id {
				t.Fatalf("filtered %v = %+v, %v", f, got, err)
			}
		}
		none, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("name", "no-such-name"))})
		if err != nil || len(none) != 0 {
			t.Fatalf("filter on a missing name = %+v, %v", none, err)
		}
	})

	t.Run("images", func(t *testing.T) {
		list, err := cli.ImageList(ctx, image.ListOptions{All: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || !slices.Contains(list[0].RepoTags, ref) {
			t.Fatalf("images = %+v", list)
		}
		want, err := dc.ImageList(ctx, image.ListOptions{All: true})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(list, want) {
			t.Fatalf("ImageList differs from Docker's client:\n got %+v\nwant %+v", list, want)
		}
		for _, tc := range []struct {
			ref  string
			want int
		}{{ref, 1}, {"no-such-image", 0}} {
			got, err := cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", tc.ref))})
			if err != nil || len(got) != tc.want {
				t.Fatalf("reference=%s: %+v, %v", tc.ref, got, err)
			}
		}

		for _, r := range []string{ref, list[0].ID} {
			in, err := cli.ImageInspect(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if in.ID != list[0].ID || !slices.Contains(in.RepoTags, ref) {
				t.Fatalf("inspect %s = %+v", r, in)
			}
			want, err := dc.ImageInspect(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(in, want) {
				t.Fatalf("ImageInspect differs from Docker's client:\n got %+v\nwant %+v", in, want)
			}
		}
	})

	t.Run("volumes", func(t *testing.T) {
		for _, n := range []string{"cli-vol-a", "cli-vol-b"} {
			if _, err := dc.VolumeCreate(ctx, volume.CreateOptions{Name: n, Labels: map[string]string{"n": n}}); err != nil {
				t.Fatal(err)
			}
		}
		all, err := cli.VolumeList(ctx, volume.ListOptions{})
		if err != nil || len(all.Volumes) != 2 {
			t.Fatalf("volumes = %+v, %v", all, err)
		}
		got, err := cli.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "n=cli-vol-b"))})
		if err != nil || len(got.Volumes) != 1 || got.Volumes[0].Name != "cli-vol-b" {
			t.Fatalf("filtered volumes = %+v, %v", got, err)
		}
		v, err := cli.VolumeInspect(ctx, "cli-vol-a")
		if err != nil {
			t.Fatal(err)
		}
		want, err := dc.VolumeInspect(ctx, "cli-vol-a")
		if err != nil {
			t.Fatal(err)
		}
		if v.Name != "cli-vol-a" || v.Driver != "local" || !reflect.DeepEqual(v, want) {
			t.Fatalf("inspect = %+v, Docker's client: %+v", v, want)
		}
	})

	t.Run("not found", func(t *testing.T) {
		_, err := cli.ImageInspect(ctx, "nosuch:latest")
		var ae *apiError
		if !cerrdefs.IsNotFound(err) || !errors.As(err, &ae) || ae.Status != 404 {
			t.Fatalf("inspect missing image: %#v", err)
		}
		// The message is the daemon's, as Docker's client reports it.
		_, dcErr := dc.ImageInspect(ctx, "nosuch:latest")
		msg := strings.TrimPrefix(dcErr.Error(), "Error response from daemon: ")
		if !strings.Contains(msg, "No such image: nosuch:latest") || err.Error() != "daemon returned 404 Not Found: "+msg {
			t.Fatalf("message %q; Docker's client: %q", err, dcErr)
		}
		if _, err := cli.VolumeInspect(ctx, "nosuch"); !cerrdefs.IsNotFound(err) {
			t.Fatalf("inspect missing volume: %v", err)
		}
	})

	t.Run("events", func(t *testing.T) {
		// A volume created before the stream opens comes from the since
		// cursor, one created after from the live stream.
		info, err := cli.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, err := time.Parse(time.RFC3339Nano, info.SystemTime)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dc.VolumeCreate(ctx, volume.CreateOptions{Name: "ev-before"}); err != nil {
			t.Fatal(err)
		}
		ectx, ecancel := context.WithCancel(ctx)
		defer ecancel()
		msgs, errs := cli.Events(ectx, events.ListOptions{
			Since:   formatSince(st),
			Filters: filters.NewArgs(filters.Arg("type", string(events.VolumeEventType))),
		})
		if _, err := dc.VolumeCreate(ctx, volume.CreateOptions{Name: "ev-after"}); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"ev-before", "ev-after"} {
			m := recvMsg(t, msgs, errs)
			if m.Type != events.VolumeEventType || m.Action != events.ActionCreate || m.Actor.ID != name {
				t.Fatalf("event %+v, want volume create %s", m, name)
			}
		}
		ecancel()
		if err := recvEnd(t, errs); !errors.Is(err, context.Canceled) {
			t.Fatalf("stream ended with %v, want context.Canceled", err)
		}
	})
}
