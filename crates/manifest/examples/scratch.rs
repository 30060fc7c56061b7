fn main() {
    for text in [
        "spin_manifest_version = 2\ntrigger = 5\n[application]\nname = \"a\"\n",
        "spin_manifest_version = 2\ntrigger.http = [\"x\"]\n[application]\nname = \"a\"\n",
        "spin_manifest_version = 2\ncomponent = 5\n[application]\nname = \"a\"\n",
        "spin_manifest_version = 2\nvariables = 5\n[application]\nname = \"a\"\n",
        "spin_manifest_version = 2\napplication = 5\n",
        "spin_manifest_version = 3\n[application]\nname = \"a\"\n",
        "spin_manifest_version = true\n[application]\nname = \"a\"\n",
        "spin_version = \"1\"\nname = \"a\"\n",
        "spin_manifest_version = 2\n",
        "spin_manifest_version = 2\n[application]\nname = \"\"\n",
        "spin_manifest_version = 2\n[application]\nname = \"a\"\n[component.\"my.app\"]\nsource = \"x\"\n",
        "spin_manifest_version = 2\n[application]\nname = \"a\"\n[component.a]\nsource = \"x\"\n[component.a.variables]\nx = \"{{ }}\"\n",
        "spin_manifest_version = 2\n[application]\nname = \"a\"\n[[trigger.http]]\nroute = \"/\"\ncomponent = { source = \"x\", variables = { y = \"{{ nope }}\" } }\n",
    ] {
        match boson_manifest::parse("spin.toml", text) {
            Ok(m) => println!("OK    {text:?} {:?}", m.components.keys().collect::<Vec<_>>()),
            Err(e) => println!("{e}"),
        }
    }
}
