// The console: `index.html` → dist/index.html + hashed assets. `npm run dev` proxies the API and
// Socket.IO to a running server (SWITCHBOARD_URL, default http://127.0.0.1:8080).
import { defineConfig } from "vite";

const server = process.env.SWITCHBOARD_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  base: "/",
  build: { outDir: "dist", emptyOutDir: true, target: "es2020", sourcemap: false },
  server: {
    proxy: {
      "/api": server,
      "/socket.io": { target: server, ws: true },
    },
  },
});
