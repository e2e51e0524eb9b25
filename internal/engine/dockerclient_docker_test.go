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
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/volume"

	"github.com/rdd-project/rdd/internal/dockertest"
)

// TestDockerClientAgainstDockerd runs dockerClient against a private
// dockerd and compares its answers with those of Docker's client
// (dockertest.Client), projected onto our wire types (the dockerXxx
// helpers below): every field we decode must equal Docker's decoding of
// the same answer. The subtests share the daemon and run in order.
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
		all, err := cli.ContainerList(ctx, containerListOptions{All: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 1 || all[0].ID != id || all[0].State != string(container.StateCreated) || !slices.Equal(all[0].Names, []string{"/cli-created"}) {
			t.Fatalf("all containers = %+v", all)
		}
		want, err := dc.ContainerList(ctx, container.ListOptions{All: true})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(all, dockerContainers(want)) {
			t.Fatalf("ContainerList differs from Docker's client:\n got %+v\nwant %+v", all, want)
		}
		running, err := cli.ContainerList(ctx, containerListOptions{})
		if err != nil || len(running) != 0 {
			t.Fatalf("running containers = %+v, %v", running, err)
		}
		for _, f := range []listFilters{{"id": {id}}, {"name": {"cli-created"}}, {"name": {"cli-created", "other"}}} {
			got, err := cli.ContainerList(ctx, containerListOptions{All: true, Filters: f})
			if err != nil || len(got) != 1 || got[0].ID != id {
				t.Fatalf("filtered %v = %+v, %v", f, got, err)
			}
		}
		none, err := cli.ContainerList(ctx, containerListOptions{All: true, Filters: listFilters{"name": {"no-such-name"}}})
		if err != nil || len(none) != 0 {
			t.Fatalf("filter on a missing name = %+v, %v", none, err)
		}
	})

	t.Run("images", func(t *testing.T) {
		list, err := cli.ImageList(ctx, imageListOptions{All: true})
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
		if !reflect.DeepEqual(list, dockerImages(want)) {
			t.Fatalf("ImageList differs from Docker's client:\n got %+v\nwant %+v", list, want)
		}
		for _, tc := range []struct {
			ref  string
			want int
		}{{ref, 1}, {"no-such-image", 0}} {
			got, err := cli.ImageList(ctx, imageListOptions{Filters: listFilters{"reference": {tc.ref}}})
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
			if !reflect.DeepEqual(in, dockerImageInspect(want)) {
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
		all, err := cli.VolumeList(ctx, volumeListOptions{})
		if err != nil || len(all.Volumes) != 2 {
			t.Fatalf("volumes = %+v, %v", all, err)
		}
		wantAll, err := dc.VolumeList(ctx, volume.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		byName := func(a, b volumeResponse) int { return strings.Compare(a.Name, b.Name) }
		slices.SortFunc(all.Volumes, byName) // dockerd lists from a map
		wantVols := dockerVolumeList(wantAll)
		slices.SortFunc(wantVols.Volumes, byName)
		if !reflect.DeepEqual(all, wantVols) {
			t.Fatalf("VolumeList differs from Docker's client:\n got %+v\nwant %+v", all, wantAll)
		}
		got, err := cli.VolumeList(ctx, volumeListOptions{Filters: listFilters{"label": {"n=cli-vol-b"}}})
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
		if v.Name != "cli-vol-a" || v.Driver != "local" || !reflect.DeepEqual(v, dockerVolume(want)) {
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
		msgs, errs := cli.Events(ectx, eventsOptions{
			Since:   st,
			Filters: listFilters{"type": {string(eventVolume)}},
		})
		if _, err := dc.VolumeCreate(ctx, volume.CreateOptions{Name: "ev-after"}); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"ev-before", "ev-after"} {
			m := recvMsg(t, msgs, errs)
			if m.Type != eventVolume || m.Action != actionCreate || m.Actor.ID != name || m.Scope != "local" || m.TimeNano/1e9 != m.Time {
				t.Fatalf("event %+v, want volume create %s", m, name)
			}
		}
		ecancel()
		if err := recvEnd(t, errs); !errors.Is(err, context.Canceled) {
			t.Fatalf("stream ended with %v, want context.Canceled", err)
		}
	})
}

// The dockerXxx helpers project the answers of Docker's client onto our
// wire types, keeping nil and empty apart as the JSON decoder does.

func dockerContainers(in []container.Summary) []containerSummary {
	if in == nil {
		return nil
	}
	out := make([]containerSummary, 0, len(in))
	for _, s := range in {
		c := containerSummary{
			ID: s.ID, Names: s.Names, Image: s.Image, ImageID: s.ImageID, Command: s.Command,
			Created: s.Created, Labels: s.Labels, State: string(s.State), Status: s.Status,
		}
		if s.Ports != nil {
			c.Ports = make([]containerPort, 0, len(s.Ports))
		}
		for _, p := range s.Ports {
			c.Ports = append(c.Ports, containerPort{IP: p.IP, PrivatePort: p.PrivatePort, PublicPort: p.PublicPort, Type: p.Type})
		}
		out = append(out, c)
	}
	return out
}

func dockerImages(in []image.Summary) []imageSummary {
	if in == nil {
		return nil
	}
	out := make([]imageSummary, 0, len(in))
	for _, s := range in {
		out = append(out, imageSummary{
			ID: s.ID, RepoTags: s.RepoTags, RepoDigests: s.RepoDigests,
			Created: s.Created, Size: s.Size, Labels: s.Labels,
		})
	}
	return out
}

func dockerImageInspect(in image.InspectResponse) imageInspectResponse {
	out := imageInspectResponse{
		ID: in.ID, RepoTags: in.RepoTags, RepoDigests: in.RepoDigests,
		Created: in.Created, Size: in.Size,
	}
	if in.Config != nil {
		out.Config = &imageConfig{Labels: in.Config.Labels}
	}
	return out
}

func dockerVolume(v volume.Volume) volumeResponse {
	return volumeResponse{
		Name: v.Name, Driver: v.Driver, Mountpoint: v.Mountpoint,
		Scope: v.Scope, CreatedAt: v.CreatedAt, Labels: v.Labels,
	}
}

func dockerVolumeList(in volume.ListResponse) volumeListResponse {
	out := volumeListResponse{Warnings: in.Warnings}
	if in.Volumes != nil {
		out.Volumes = make([]volumeResponse, 0, len(in.Volumes))
	}
	for _, v := range in.Volumes {
		out.Volumes = append(out.Volumes, dockerVolume(*v))
	}
	return out
}
