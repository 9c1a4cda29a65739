// A small dictionary in the GCIDE text form heldout.txt holds (header at
// column 0, indented body, source tags), written for these tests (not GCIDE's
// text): each entry with the answer span the dataset builder must find, or
// null where the entry must give no question. Covers: multi-line etymology
// headers, numbered senses, (a) sub-senses, (Domain) and [Obs.] markers,
// cross-references, too-short definitions, definitions running over lines,
// quotations, WordNet-style entries, non-ASCII text, a repeated
// definition (not distinctive), and a last entry (dropped: it may be cut).

export interface FixtureEntry {
  /** The entry's lines, as they appear (header first). */
  lines: string[];
  headword: string;
  /** The answer candidate's words, or null: no question from this entry. */
  answer: string | null;
  /** The answer also appears in another entry. */
  repeated?: boolean;
}

export const FIXTURE_ENTRIES: FixtureEntry[] = [
  {
    headword: 'Lanternist',
    answer: 'One who tends the lamps of a lighthouse.',
    lines: [
      'Lanternist \\Lan"tern*ist\\, n. [From {Lantern}.]',
      '   One who tends the lamps of a lighthouse.',
      '   [1913 Webster]',
    ],
  },
  {
    headword: 'Quillwork',
    answer: 'Ornament made of dyed porcupine quills sewn in rows upon',
    lines: [
      'Quillwork \\Quill"work`\\, n. [Quill + work; cf. AS. cwille a',
      '   reed, stalk.]',
      '   Ornament made of dyed porcupine quills sewn in rows upon',
      '   leather or bark, as on moccasins and pouches.',
      '   [1913 Webster]',
    ],
  },
  {
    headword: 'Ferrule',
    answer: 'A metal ring or cap put round the end of',
    lines: [
      'Ferrule \\Fer"rule\\, n. [OF. virole, fr. L. viriola a little',
      '   bracelet.]',
      '   1. A metal ring or cap put round the end of a cane, tool',
      '      handle, or the like, to keep it from splitting or wearing.',
      '      [1913 Webster]',
      '',
      '   2. (Steam Boilers) A bush driven into the end of a tube.',
      '      [1913 Webster]',
    ],
  },
  {
    headword: 'Dapplewort',
    answer: 'A low herb with spotted leaves, found in damp woods.',
    lines: [
      'Dapplewort \\Dap"ple*wort`\\, n. (Bot.)',
      '   A low herb with spotted leaves, found in damp woods.',
      '   [1913 Webster]',
      '',
      '         The dapplewort grew thick beside the brook.   --Anon.',
      '   [1913 Webster]',
    ],
  },
  {
    headword: 'Gleaming',
    answer: null, // a bare cross-reference
    lines: [
      'Gleaming \\Gleam"ing\\, n.',
      '   Same as {Gleam}.',
      '   [1913 Webster]',
    ],
  },
  {
    headword: 'Stoven',
    answer: 'Broken in, as a cask or a boat.',
    lines: [
      'Stoven \\Stov"en\\, a. [Obs.]',
      '   [Obs.] Broken in, as a cask or a boat. --Fuller.',
      '   [1913 Webster]',
    ],
  },
  {
    headword: 'Tarrier',
    answer: null, // one word only
    lines: [
      'Tarrier \\Tar"ri*er\\, n.',
      '   Loiterer.',
      '   [1913 Webster]',
    ],
  },
  {
    headword: 'Windlestraw',
    answer: 'A dry stalk of grass left standing through the winter;',
    lines: [
      'Windlestraw \\Win"dle*straw`\\, n. [AS. windelstr[=e]aw; windel a',
      '   basket + str[=e]aw straw.]',
      '   A dry stalk of grass left standing through the winter;',
      '   hence, anything slight or feeble.',
      '   [1913 Webster]',
    ],
  },
  {
    headword: 'Brumal',
    answer: 'Belonging to the winter; wintry.',
    lines: [
      'Brumal \\Bru"mal\\, a. [L. brumalis.]',
      '   (a) Belonging to the winter; wintry.',
      '   (b) Cold and foggy, as the short days.',
      '       [1913 Webster]',
    ],
  },
  {
    headword: 'Cantle',
    answer: 'A corner or piece cut off from anything; a fragment.',
    lines: [
      'Cantle \\Can"tle\\, n. [OF. cantel, chantel, dim. of cant corner,',
      '   edge. See {Cant} an edge.]',
      '   A corner or piece cut off from anything; a fragment.',
      '   [1913 Webster]',
    ],
  },
  {
    headword: 'Orrisroot',
    answer: 'The fragrant dried root of a kind of iris.',
    repeated: true, // the same definition as Violetroot: no question where both are in the context
    lines: [
      'Orrisroot \\Or"ris*root`\\, n.',
      '   The fragrant dried root of a kind of iris.',
      '   [1913 Webster]',
    ],
  },
  {
    headword: 'Violetroot',
    answer: 'The fragrant dried root of a kind of iris.',
    repeated: true,
    lines: [
      'Violetroot \\Vi"o*let*root`\\, n.',
      '   The fragrant dried root of a kind of iris.',
      '   [1913 Webster]',
    ],
  },
  {
    headword: 'petrosal',
    answer: 'relating to the hard dense part of the temporal bone',
    lines: [
      'petrosal \\petrosal\\ adj.',
      '   1. relating to the hard dense part of the temporal bone',
      '      [WordNet 1.5]',
    ],
  },
  {
    headword: 'Caf\u00e9 noir',
    answer: 'Black coffee, served without milk after a caf\u00e9 dinner.',
    lines: [
      'Caf\u00e9 noir \\Caf\u00e9 noir\\, n. [F.]',
      '   Black coffee, served without milk after a caf\u00e9 dinner.',
      '   [Webster 1913 Suppl.]',
    ],
  },
  {
    headword: 'Trundletail',
    answer: 'A dog with a curled tail; a cur.',
    lines: [
      'Trundletail \\Trun"dle*tail`\\, n.',
      '   A dog with a curled tail; a cur. -- used in contempt.',
      '   [1913 Webster]',
    ],
  },
  {
    headword: 'Hornbook',
    answer: 'A first book for children, formerly a single page set',
    lines: [
      'Hornbook \\Horn"book`\\, n.',
      '   1. A first book for children, formerly a single page set',
      '      in a frame and covered with thin horn to keep it clean.',
      '      [1913 Webster]',
      '',
      '            He teaches boys the hornbook.           --Shak.',
      '      [1913 Webster]',
    ],
  },
  {
    headword: 'Endnote',
    answer: null, // the last entry of a block is dropped (it may be cut)
    lines: [
      'Endnote \\End"note`\\, n.',
      '   A note printed at the end of a book or chapter.',
      '   [1913 Webster]',
    ],
  },
];

/** The whole fixture text: entries separated by blank lines. */
export const FIXTURE_TEXT: string = FIXTURE_ENTRIES.map((e) => e.lines.join('\n')).join('\n\n') + '\n';
