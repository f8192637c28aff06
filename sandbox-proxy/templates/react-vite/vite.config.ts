import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

// The app is served at / of its own preview origin (one per project; KILN_BASE is '/').
// node_modules is a shared read-only layer, so Vite's cache lives in the project.
export default defineConfig({
  plugins: [react()],
  base: process.env.KILN_BASE ?? '/',
  cacheDir: '.vite',
  server: {
    host: '0.0.0.0',
    port: Number(process.env.PORT ?? 5173),
    strictPort: true,
    allowedHosts: true,
  },
})
