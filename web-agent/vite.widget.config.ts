// The customer widget: one self-contained script, dist/widget.js (an IIFE, no hash in its name:
// sites embed it by a stable URL). Built after the console into the same folder.
import { defineConfig } from "vite";

export default defineConfig({
  publicDir: false,
  build: {
    outDir: "dist",
    emptyOutDir: false,
    target: "es2020",
    lib: {
      entry: "src/widget/main.ts",
      name: "SwitchboardWidget",
      formats: ["iife"],
      fileName: () => "widget.js",
    },
  },
});
