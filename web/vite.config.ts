import { defineConfig } from 'vite'

// Built to web/dist, served by the Worker on Kiln's own origin only (never on a preview
// host). Preact through the automatic JSX runtime; no framework plugin needed.
export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
})
