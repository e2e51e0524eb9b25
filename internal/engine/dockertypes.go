package engine

import (
	"encoding/json"
	"time"
)

// Wire types of the Docker Engine API, reduced to the fields the engine
// reads. They replace github.com/docker/docker/api/types, whose container
// and image packages pull in github.com/opencontainers/go-digest: its
// package init compiles regular expressions, which every rdd command paid
// for (0.2-0.4 ms) although only the daemon talks to Docker. encoding/json
// ignores the fields left out, so the daemon may send more than these. The
// field names and JSON keys are Docker's, so a reader can check them
// against the API reference (API 1.41, dockerd 20.10, to 1.47).

// pingResponse is what GET /_ping announces in its headers.
type pingResponse struct {
	// APIVersion is the daemon's newest API version ("API-Version"); ""
	// when not announced.
	APIVersion string
	// OSType is "linux" or "windows" ("OSType").
	OSType string
}

// infoResponse is the part of GET /info the Watcher reads.
type infoResponse struct {
	// SystemTime is the daemon's clock, RFC 3339 with nanoseconds: the
	// event cursor.
	SystemTime string `json:"SystemTime"`
	// ServerVersion is the engine's version, e.g. "20.10.24".
	ServerVersion string `json:"ServerVersion"`
}

// containerSummary is one entry of GET /containers/json.
type containerSummary struct {
	ID string `json:"Id"`
	// Names start with "/"; legacy link aliases have a further "/".
	Names   []string `json:"Names"`
	Image   string   `json:"Image"`
	ImageID string   `json:"ImageID"`
	Command string   `json:"Command"`
	// Created is in Unix seconds.
	Created int64             `json:"Created"`
	Ports   []containerPort   `json:"Ports"`
	Labels  map[string]string `json:"Labels"`
	// State is created, running, paused, restarting, removing, exited or dead.
	State  string `json:"State"`
	Status string `json:"Status"`
}

// containerPort is one port of a containerSummary.
type containerPort struct {
	IP          string `json:"IP,omitempty"`
	PrivatePort uint16 `json:"PrivatePort"`
	PublicPort  uint16 `json:"PublicPort,omitempty"`
	Type        string `json:"Type"`
}

// imageSummary is one entry of GET /images/json.
type imageSummary struct {
	ID          string   `json:"Id"`
	RepoTags    []string `json:"RepoTags"`
	RepoDigests []string `json:"RepoDigests"`
	// Created is in Unix seconds.
	Created int64             `json:"Created"`
	Size    int64             `json:"Size"`
	Labels  map[string]string `json:"Labels"`
}

// imageInspectResponse is the part of GET /images/<ref>/json the engine
// reads.
type imageInspectResponse struct {
	ID          string   `json:"Id"`
	RepoTags    []string `json:"RepoTags"`
	RepoDigests []string `json:"RepoDigests"`
	// Created is RFC 3339 with nanoseconds, unlike the list's Unix seconds.
	Created string `json:"Created"`
	Size    int64  `json:"Size"`
	// Config is nil when the daemon sends none.
	Config *imageConfig `json:"Config"`
}

// imageConfig is the part of an image's config the engine reads.
type imageConfig struct {
	Labels map[string]string `json:"Labels"`
}

// volumeResponse is one volume: GET /volumes/<name>, or an entry of GET
// /volumes.
type volumeResponse struct {
	Name       string `json:"Name"`
	Driver     string `json:"Driver"`
	Mountpoint string `json:"Mountpoint"`
	// Scope is "local" or "global".
	Scope string `json:"Scope"`
	// CreatedAt is RFC 3339; dockerd omits it for some drivers.
	CreatedAt string            `json:"CreatedAt,omitempty"`
	Labels    map[string]string `json:"Labels"`
}

// volumeListResponse is GET /volumes.
type volumeListResponse struct {
	Volumes []volumeResponse `json:"Volumes"`
	// Warnings are the daemon's, e.g. about a volume driver that failed.
	Warnings []string `json:"Warnings"`
}

// eventType is the kind of object an event is about (Message.Type).
type eventType string

// The event types the Watcher streams.
const (
	eventContainer eventType = "container"
	eventImage     eventType = "image"
	eventVolume    eventType = "volume"
)

// eventAction is what happened to the object (Message.Action). Actions of
// health checks and exec carry a suffix (e.g. "exec_start: sh"); the
// Watcher ignores those.
type eventAction string

// The event actions the Watcher acts on (behavior.md §7.2).
const (
	actionCreate  eventAction = "create"
	actionStart   eventAction = "start"
	actionStop    eventAction = "stop"
	actionDie     eventAction = "die"
	actionPause   eventAction = "pause"
	actionUnpause eventAction = "unpause"
	actionRestart eventAction = "restart"
	actionRename  eventAction = "rename"
	actionDestroy eventAction = "destroy"
	actionPull    eventAction = "pull"
	actionImport  eventAction = "import"
	actionLoad    eventAction = "load"
	actionTag     eventAction = "tag"
	actionUntag   eventAction = "untag"
	actionDelete  eventAction = "delete"
)

// eventMessage is one message of GET /events. The deprecated top-level
// "status", "id" and "from" keys are left out on purpose: Actor carries the
// same facts for every event type.
type eventMessage struct {
	Type   eventType   `json:"Type"`
	Action eventAction `json:"Action"`
	Actor  eventActor  `json:"Actor"`
	// Scope is "local" for engine events, "swarm" for cluster events.
	Scope string `json:"scope,omitempty"`
	// Time is in Unix seconds, TimeNano in Unix nanoseconds.
	Time     int64 `json:"time,omitempty"`
	TimeNano int64 `json:"timeNano,omitempty"`
}

// eventActor is the object of an event.
type eventActor struct {
	// ID is a container or image id, an image reference (pull), or a
	// volume name.
	ID string `json:"ID"`
	// Attributes hold e.g. the container's "name" (the new one on rename).
	Attributes map[string]string `json:"Attributes"`
}

// listFilters are the filters of a list or events request: each key (e.g.
// "type", "id", "label") maps to the values it accepts. An object matches
// when, for every key, it matches one of the values.
type listFilters map[string][]string

// encode returns the value of the "filters" query parameter: the
// {"key":{"value":true}} JSON that Docker's client sends since API 1.22.
// dockerd 20.10 also accepts the older {"key":["value"]}, but only as a
// fallback after the map form fails to parse. json.Marshal sorts map keys,
// so equal filters give equal queries.
func (f listFilters) encode() (string, error) {
	m := make(map[string]map[string]bool, len(f))
	for k, vs := range f {
		if len(vs) == 0 {
			continue
		}
		set := make(map[string]bool, len(vs))
		for _, v := range vs {
			set[v] = true
		}
		m[k] = set
	}
	if len(m) == 0 {
		return "", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// containerListOptions are the parameters of ContainerList.
type containerListOptions struct {
	// All lists stopped containers too, not only running ones.
	All     bool
	Filters listFilters
}

// imageListOptions are the parameters of ImageList.
type imageListOptions struct {
	// All lists intermediate images too.
	All     bool
	Filters listFilters
}

// volumeListOptions are the parameters of VolumeList.
type volumeListOptions struct {
	Filters listFilters
}

// eventsOptions are the parameters of Events.
type eventsOptions struct {
	// Since replays the events from this daemon time on; zero streams
	// only new events. It is a time, not Docker's string, so the cursor
	// is always sent as "<unix>.<nanos>" and cannot be malformed.
	Since   time.Time
	Filters listFilters
}
