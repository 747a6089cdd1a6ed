module portico.dev/devcluster/images/hello

go 1.24
