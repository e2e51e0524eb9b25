package events

import (
	"encoding/json"
	"reflect"
	"testing"
)

func fastSeeds() []string {
	return []string{
		`{"machine":"vm","event":"start","from":"stopped","to":"starting","generation":3,"facts":{}}`,
		`{"machine":"vm","event":"started","from":"starting","to":"running","reason":"Started","message":"Lima instance is running","generation":9223372036854775807,"facts":{"pid":42,"restartCount":1,"port":7443,"templateHash":"engine=moby;k8s=false;version=;port=0","containers":3,"images":2,"volumes":1,"ambiguousStreak":2}}`,
		` { "machine" : "k3s" , "to" : "ready" , "generation" : -0 } `,
		`{"machine":"engine","message":"failed to ping Docker: \u003cnil\u003e \"quoted\"\n","to":"connectFailed"}`,
		`{"machine":"vm","message":"caf\u00e9 naïve ✓","to":"stopped"}`,
		`{"Machine":"vm","to":"stopped"}`,
		`{"machine":null,"to":"stopped"}`,
		`{"machine":"vm","generation":1.5}`,
		`{"machine":"vm","generation":1e3}`,
		`{"machine":"vm","generation":01}`,
		`{"machine":"vm","generation":99999999999999999999}`,
		`{"machine":"vm","facts":{"pid":1},"facts":{"port":2}}`,
		`{"machine":"vm","facts":null}`,
		`{"machine":"vm"} trailing`,
		`{"machine":"vm",}`,
		`{"machine":"vm","unknown":1}`,
		"{\"machine\":\"v\xffm\"}",
		`{}`,
		`{"generation":5,"facts":{"templateHash":"a\\b"}}`,
		`{"generation":2,"spec":{"running":true,"containerEngine":{"name":"moby"},"kubernetes":{"enabled":true,"version":"1.34.6"},"namespace":"default"},"changed":["running","kubernetes.enabled"],"source":{"uid":1000,"pid":42,"command":"rdd set running=true"}}`,
		`{"generation":1,"spec":{"running":false,"containerEngine":{"name":"containerd"},"kubernetes":{"enabled":false},"namespace":"default"},"changed":[],"source":{"uid":0}}`,
		`{"changed":["a"],"changed":[]}`,
		`{"changed":["a","b"],"changed":["c"]}`,
		`{"changed":null}`,
		`{"spec":{"running":tru}}`,
		`{"spec":{"running":true},"spec":{"namespace":"x"}}`,
		`{"machine":"vm","event":"stop","from":"running","to":"stopping","generation":2,"set":{"pid":0,"restartCount":1,"port":0,"templateHash":"","restartKey":"k","containers":0,"images":0,"volumes":0,"ambiguousStreak":0}}`,
		`{"machine":"vm","generation":2,"set":{"pid":7}}`,
		`{"machine":"vm","set":{"pid":1},"set":{"pid":2,"port":3}}`,
		`{"machine":"vm","set":{"pid":1},"facts":{"port":3,"restartKey":"x"}}`,
		`{"machine":"vm","facts":{"pid":4},"set":{"templateHash":""}}`,
		`{"machine":"vm","set":{"pid":null}}`,
		`{"machine":"vm","set":null}`,
		`{"machine":"vm","set":{}}`,
		`{"machine":"vm","set":{"Pid":1}}`,
	}
}

// FuzzFastDecode checks that whenever the fast path accepts a payload, it
// decodes exactly what encoding/json decodes.
func FuzzFastDecode(f *testing.F) {
	for _, s := range fastSeeds() {
		f.Add([]byte(s))
	}
	p := NewProjector()
	f.Fuzz(func(t *testing.T, data []byte) {
		p.tr = Transition{}
		if p.fastTransition(data) {
			var want Transition
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatalf("fast path accepted %q, encoding/json: %v", data, err)
			}
			if !reflect.DeepEqual(p.tr, want) {
				t.Fatalf("Transition %q:\nfast %+v\njson %+v", data, p.tr, want)
			}
		}
		p.ob = Observed{}
		if p.fastObserved(data) {
			var want Observed
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatalf("fast path accepted %q, encoding/json: %v", data, err)
			}
			if !reflect.DeepEqual(p.ob, want) {
				t.Fatalf("Observed %q:\nfast %+v\njson %+v", data, p.ob, want)
			}
		}
		p.sc = SpecChanged{}
		if p.fastSpecChanged(data, []string{"stale", "buffer"}) {
			var want SpecChanged
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatalf("fast path accepted %q, encoding/json: %v", data, err)
			}
			if !reflect.DeepEqual(p.sc, want) {
				t.Fatalf("SpecChanged %q:\nfast %+v\njson %+v", data, p.sc, want)
			}
		}
	})
}

// TestFastDecodeCoversEncoderOutput makes sure what New writes takes the
// fast path, so the benchmark measures it.
func TestFastDecodeCoversEncoderOutput(t *testing.T) {
	t.Parallel()
	p := NewProjector()
	for _, pl := range []Payload{
		&Transition{Machine: MachineVM, Event: "start", From: "stopped", To: "starting", Reason: "R", Message: "failed: <x> & \"y\"", Generation: 4,
			Facts: ReplaceFacts(Facts{PID: 1, RestartCount: 2, Port: 3, TemplateHash: "h", RestartKey: "k", Containers: 4, Images: 5, Volumes: 6, AmbiguousStreak: 7})},
		&Transition{Machine: MachineVM, Event: "stop", From: "running", To: "stopping", Facts: FactsPatch{PID: Int(0), TemplateHash: Str("")}},
		&Transition{Machine: MachineK3s, To: "ready"},
	} {
		e, err := New(t0, pl)
		if err != nil {
			t.Fatal(err)
		}
		p.tr = Transition{}
		if !p.fastTransition(e.Data) || !reflect.DeepEqual(&p.tr, pl) {
			t.Errorf("fast path on %s: %+v", e.Data, p.tr)
		}
	}
	for _, pl := range []*Observed{
		{Machine: MachineEngine, Generation: 7, Facts: FactsPatch{Containers: Int(2)}},
		{Machine: MachineEngine, Generation: 7},
	} {
		e, err := New(t0, pl)
		if err != nil {
			t.Fatal(err)
		}
		p.ob = Observed{}
		if !p.fastObserved(e.Data) || !reflect.DeepEqual(&p.ob, pl) {
			t.Errorf("fast path on %s: %+v", e.Data, p.ob)
		}
	}
	for _, pl := range []*SpecChanged{
		{Generation: 3, Spec: k8sSpec(true, "1.33.10"), Changed: []string{"kubernetes.enabled"}, Source: Source{UID: 1, PID: 2, Command: "rdd set a=<b>"}},
		{Generation: 1, Spec: defaultSpec(false), Changed: []string{}},
	} {
		e, err := New(t0, pl)
		if err != nil {
			t.Fatal(err)
		}
		p.sc = SpecChanged{}
		if !p.fastSpecChanged(e.Data, nil) || !reflect.DeepEqual(&p.sc, pl) {
			t.Errorf("fast path on %s: %+v", e.Data, p.sc)
		}
	}
}
