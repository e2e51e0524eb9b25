package engine

import (
	"encoding/json"
	"testing"
	"testing/synctest"
	"time"
)

func TestContainerName(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{nil, ""},
		{[]string{"/web"}, "web"},
		{[]string{"/app/db", "/db"}, "db"}, // legacy link alias first
		{[]string{"/db", "/app/db"}, "db"},
	} {
		if got := containerName(tc.names); got != tc.want {
			t.Errorf("containerName(%q) = %q, want %q", tc.names, got, tc.want)
		}
	}
}

// TestRenameUsesEventName: dockerd 20.10 lists both names right after a
// rename; the event's name wins.
func TestRenameUsesEventName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		w, pl := fakeWatcher(t, f, WatcherOptions{})
		stop := w.Start(t.Context())
		defer stop()
		if _, err := pl.next(PhaseConnected, time.Minute); err != nil {
			t.Fatal(err)
		}
		f.set(func(f *fakeDocker) {
			f.containers["c1"] = containerSummary{ID: "c1", Names: []string{"/old", "/new"}, State: "running"}
		})
		f.events <- eventMessage{Type: eventContainer, Action: actionRename,
			Actor: eventActor{ID: "c1", Attributes: map[string]string{"name": "new", "oldName": "/old"}}}
		synctest.Wait()
		if got := w.Inventory().Containers(); len(got) != 1 || got[0].Name != "new" {
			t.Fatalf("containers %+v", got)
		}
	})
}

func TestInventorySortedCopies(t *testing.T) {
	inv := NewInventory()
	ch := inv.Changed()
	inv.replace(
		map[string]Container{
			"b": {ID: "b", Name: "zeta", Labels: map[string]string{"k": "v"}},
			"a": {ID: "a", Name: "alpha"},
			"c": {ID: "c", Name: "alpha"},
		},
		map[string]Image{},
		map[string]Volume{"v2": {Name: "v2"}, "V1": {Name: "V1"}},
	)
	select {
	case <-ch:
	default:
		t.Fatal("Changed not closed by replace")
	}
	for _, s := range imagesFromSummary(imageSummary{ID: "sha256:d", RepoTags: []string{"<none>:<none>"}}) {
		inv.setImage(s.ID, []Image{s})
	}
	inv.setImage("sha256:x", imagesFromSummary(imageSummary{ID: "sha256:x", RepoTags: []string{"z:1", "a:1", "a:1"}, RepoDigests: []string{"r@2", "r@1"}}))

	cs := inv.Containers()
	if cs[0].ID != "a" || cs[1].ID != "c" || cs[2].ID != "b" {
		t.Fatalf("container order %+v", cs)
	}
	cs[2].Labels["k"] = "changed"
	if inv.Containers()[2].Labels["k"] != "v" {
		t.Fatal("Containers returned shared labels")
	}
	ims := inv.Images()
	var tags []string
	for _, im := range ims {
		tags = append(tags, im.RepoTag+"@"+im.ID)
	}
	want := []string{"a:1@sha256:x", "z:1@sha256:x", "@sha256:d"}
	if len(tags) != len(want) {
		t.Fatalf("images %q, want %q", tags, want)
	}
	for i := range want {
		if tags[i] != want[i] {
			t.Fatalf("images %q, want %q", tags, want)
		}
	}
	if ims[0].RepoDigests[0] != "r@1" {
		t.Fatalf("digests not sorted: %v", ims[0].RepoDigests)
	}
	if vs := inv.Volumes(); vs[0].Name != "V1" || vs[1].Name != "v2" {
		t.Fatalf("volume order %+v", vs)
	}
	if c := inv.Counts(); c != (Counts{Containers: 3, Images: 3, Volumes: 2}) {
		t.Fatalf("counts %+v", c)
	}
	b, err := json.Marshal(Counts{1, 2, 3})
	if err != nil || string(b) != `{"containers":1,"images":2,"volumes":3}` {
		t.Fatalf("counts JSON %s", b)
	}
}

func TestImageFromInspectMatchesList(t *testing.T) {
	created := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
	fromList := imagesFromSummary(imageSummary{ID: "sha256:a", RepoTags: []string{"x:1"}, Created: created.Unix(), Size: 9, Labels: map[string]string{"l": "1"}})
	fromInspect := imagesFromInspect(imageInspectResponse{ID: "sha256:a", RepoTags: []string{"x:1"}, Created: created.Add(123456789).Format(time.RFC3339Nano), Size: 9, Config: &imageConfig{Labels: map[string]string{"l": "1"}}})
	a, _ := json.Marshal(fromList)
	b, _ := json.Marshal(fromInspect)
	if string(a) != string(b) {
		t.Fatalf("list %s\ninspect %s", a, b)
	}
}
