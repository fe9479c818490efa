module pause-build/wincat

go 1.19
