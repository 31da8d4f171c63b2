// render prints the objects of a kustomization as a YAML stream, rendered by
// the kustomize library itself (krusty, what `kubectl apply -k` and
// `kustomize build` run), so the manifests' test checks what a cluster gets.
//
//	render DIR
package main

import (
	"fmt"
	"os"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: render DIR")
		os.Exit(2)
	}
	options := krusty.MakeDefaultOptions()
	// As kubectl's default: files only from within the kustomization's
	// folder tree (bases are folders of their own).
	objects, err := krusty.MakeKustomizer(options).Run(filesys.MakeFsOnDisk(), os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
	text, err := objects.AsYaml()
	if err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
	os.Stdout.Write(text)
}
