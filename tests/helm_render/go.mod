module nentang/helmrender

go 1.19
